"""End-to-end tests of the calendar operations of ews-sim (FindItem, GetItem,
SyncFolderItems, GetFolder, GetUserAvailability) and of the calendar control routes.

Every EWS response body these operations produce is validated against the EWS schema
(data/ews-schema/messages.xsd), as the operations' responses validate on real Exchange.
"""

import base64
import os
import urllib.parse

import pytest
from lxml import etree

import ews
from simharness import NS, SCHEMA_DIR, Sim

NOW = "2025-03-05T10:00:00Z"  # frozen sim time: a Wednesday, before the DST changes
MBX = "user%05d@contoso.example"

_schema = None


def schema():
    global _schema
    if _schema is None:
        _schema = etree.XMLSchema(etree.parse(os.path.join(SCHEMA_DIR, "messages.xsd")))
    return _schema


def assert_valid(r):
    """Validate the m:...Response element of a 200 answer against messages.xsd."""
    assert r.status == 200, r.body[:2000]
    el = r.xpath("/s:Envelope/s:Body/*")[0]
    doc = etree.fromstring(etree.tostring(el))
    s = schema()
    assert s.validate(doc), "%s\n%s" % (s.error_log, etree.tostring(el, pretty_print=True).decode()[:4000])
    return r


@pytest.fixture(scope="module")
def csim():
    s = Sim(["--mailboxes", "40", "--seed", "11", "--freeze-clock", NOW])
    yield s
    s.stop()


def q(s):
    return urllib.parse.quote(s, safe="")


def ctl(sim, method, path, body=None, expect=None):
    return sim.control(method, path, body, expect=expect)[1]


def fresh(sim, n):
    """An empty calendar for mailbox n (its generated items hard-deleted)."""
    smtp = MBX % n
    ctl(sim, "POST", "/mailboxes/%s/calendar/clear" % smtp, {}, expect=200)
    return smtp


def create(sim, smtp, **fields):
    return ctl(sim, "POST", "/mailboxes/%s/items" % smtp, fields, expect=201)


# -- request builders --------------------------------------------------------------------------

PROPS = ["item:Subject", "item:Sensitivity", "calendar:Start", "calendar:End", "calendar:IsAllDayEvent",
         "calendar:LegacyFreeBusyStatus", "calendar:CalendarItemType", "calendar:IsCancelled"]


def shape(base="IdOnly", props=PROPS, body_type=None):
    ap = ""
    if props:
        ap = "<t:AdditionalProperties>%s</t:AdditionalProperties>" % "".join(
            '<t:FieldURI FieldURI="%s"/>' % p for p in props)
    bt = "<t:BodyType>%s</t:BodyType>" % body_type if body_type else ""
    return "<t:BaseShape>%s</t:BaseShape>%s%s" % (base, bt, ap)


def folder_xml(folder="calendar", mailbox=None):
    if folder.startswith("id:"):
        return '<t:FolderId Id="%s"/>' % folder[3:]
    mb = "<t:Mailbox><t:EmailAddress>%s</t:EmailAddress></t:Mailbox>" % mailbox if mailbox else ""
    return '<t:DistinguishedFolderId Id="%s">%s</t:DistinguishedFolderId>' % (folder, mb)


def calendar_view(sim, smtp, start, end, max_entries=None, props=PROPS, base="IdOnly", mailbox=None,
                  folder="calendar", impersonate=True, extra_header=""):
    mx = ' MaxEntriesReturned="%d"' % max_entries if max_entries is not None else ""
    body = ('<m:FindItem Traversal="Shallow"><m:ItemShape>%s</m:ItemShape>'
            '<m:CalendarView%s StartDate="%s" EndDate="%s"/>'
            '<m:ParentFolderIds>%s</m:ParentFolderIds></m:FindItem>'
            % (shape(base, props), mx, start, end, folder_xml(folder, mailbox)))
    return ews.call(sim, body, impersonate=smtp if impersonate else None, extra_header=extra_header)


def find_items(sim, smtp, paging="", props=PROPS, folder="calendar"):
    body = ('<m:FindItem Traversal="Shallow"><m:ItemShape>%s</m:ItemShape>%s'
            '<m:ParentFolderIds>%s</m:ParentFolderIds></m:FindItem>' % (shape("IdOnly", props), paging,
                                                                         folder_xml(folder)))
    return ews.call(sim, body, impersonate=smtp)


def get_item(sim, smtp, ids_xml, base="IdOnly", props=PROPS, body_type=None):
    body = ("<m:GetItem><m:ItemShape>%s</m:ItemShape><m:ItemIds>%s</m:ItemIds></m:GetItem>"
            % (shape(base, props, body_type), ids_xml))
    return ews.call(sim, body, impersonate=smtp)


def sync(sim, smtp, state=None, max_changes=512, props=(), ignore=()):
    st = "<m:SyncState>%s</m:SyncState>" % state if state is not None else ""
    ig = ""
    if ignore:
        ig = "<m:Ignore>%s</m:Ignore>" % "".join('<t:ItemId Id="%s"/>' % i for i in ignore)
    body = ("<m:SyncFolderItems><m:ItemShape>%s</m:ItemShape>"
            '<m:SyncFolderId><t:DistinguishedFolderId Id="calendar"/></m:SyncFolderId>%s%s'
            "<m:MaxChangesReturned>%d</m:MaxChangesReturned><m:SyncScope>NormalItems</m:SyncScope>"
            "</m:SyncFolderItems>" % (shape("IdOnly", list(props)), st, ig, max_changes))
    return ews.call(sim, body, impersonate=smtp)


def items_of(r):
    """[(kind, dict of child local name -> text, ItemId element)] of the t:CalendarItems."""
    out = []
    for ci in r.xpath("//t:CalendarItem"):
        d = {}
        for c in ci:
            d[etree.QName(c).localname] = c.text
        iid = ci.find("t:ItemId", NS)
        d["Id"] = iid.get("Id") if iid is not None else None
        d["ChangeKey"] = iid.get("ChangeKey") if iid is not None else None
        out.append(d)
    return out


def children_names(el):
    return [etree.QName(c).localname for c in el]


# -- FindItem with CalendarView ---------------------------------------------------------------------


def test_calendarview_generated_calendar_validates(csim):
    r = assert_valid(calendar_view(csim, MBX % 1, "2025-02-19T00:00:00Z", "2025-04-05T00:00:00Z"))
    assert r.codes() == ["NoError"]
    items = items_of(r)
    assert 10 <= len(items)
    rf = r.xpath("//m:RootFolder")[0]
    assert rf.get("TotalItemsInView") == str(len(items)) and rf.get("IncludesLastItemInRange") == "true"
    kinds = {i["CalendarItemType"] for i in items}
    assert {"Single", "Occurrence"} <= kinds and "RecurringMaster" not in kinds
    starts = [i["Start"] for i in items]
    assert starts == sorted(starts)
    for i in items:
        assert i["Id"].startswith("AAMkAD") and i["ChangeKey"].startswith("DwAAABYAAAA")
        assert i["Start"].endswith("Z") and i["End"].endswith("Z")


def test_calendarview_expansion_exceptions_and_boundaries(csim):
    smtp = fresh(csim, 2)
    daily = create(csim, smtp, subject="Daily", start="2025-03-03T09:00:00Z", end="2025-03-03T09:30:00Z",
                   recurrence={"pattern": "daily", "count": 5})
    weekly = create(csim, smtp, subject="Weekly", start="2025-03-04T13:00:00Z", end="2025-03-04T14:00:00Z",
                    recurrence={"pattern": "weekly", "days": ["Tuesday", "Thursday"], "until": "2025-03-13"})
    create(csim, smtp, subject="Boundary", start="2025-03-05T07:00:00Z", end="2025-03-05T08:00:00Z")
    create(csim, smtp, subject="Ganztägig", start="2025-03-06", end="2025-03-07", all_day=True,
           time_zone="W. Europe Standard Time", status="OOF")
    # Occurrence 3 (Mar 5) moves out of the window, occurrence 2 (Mar 4) moves into it,
    # occurrence 4 (Mar 6) is deleted.
    ctl(csim, "PATCH", "/mailboxes/%s/items/%s/occurrences/3" % (smtp, q(daily["id"])),
        {"start": "2025-03-05T18:00:00Z", "end": "2025-03-05T18:30:00Z"}, expect=200)
    ctl(csim, "PATCH", "/mailboxes/%s/items/%s/occurrences/2" % (smtp, q(daily["id"])),
        {"start": "2025-03-04T23:30:00Z", "end": "2025-03-05T08:30:00Z", "subject": "Moved in"}, expect=200)
    ctl(csim, "DELETE", "/mailboxes/%s/items/%s/occurrences/4" % (smtp, q(daily["id"])), expect=200)

    r = assert_valid(calendar_view(csim, smtp, "2025-03-05T08:00:00Z", "2025-03-07T00:00:00Z"))
    got = [(i["Subject"], i["Start"], i["CalendarItemType"]) for i in items_of(r)]
    assert got == [
        ("Moved in", "2025-03-04T23:30:00Z", "Exception"),
        ("Boundary", "2025-03-05T07:00:00Z", "Single"),  # ends exactly at StartDate: included
        ("Daily", "2025-03-05T18:00:00Z", "Exception"),
        ("Ganztägig", "2025-03-05T23:00:00Z", "Single"),  # midnight Berlin time
        ("Weekly", "2025-03-06T13:00:00Z", "Occurrence"),
    ]
    allday = items_of(r)[3]
    assert allday["IsAllDayEvent"] == "true" and allday["End"] == "2025-03-06T23:00:00Z"
    # The moved exception is gone from its original slot; deleted occurrence 4 is absent.
    r = assert_valid(calendar_view(csim, smtp, "2025-03-05T08:45:00Z", "2025-03-05T10:00:00Z"))
    assert items_of(r) == []
    r = assert_valid(calendar_view(csim, smtp, "2025-03-06T00:00:00Z", "2025-03-08T00:00:00Z"))
    got = [(i["Subject"], i["Start"]) for i in items_of(r)]
    assert ("Daily", "2025-03-06T09:00:00Z") not in got and ("Daily", "2025-03-07T09:00:00Z") in got
    # Occurrence ids are distinct and stable, the RecurringMaster never shows in a view.
    r1 = calendar_view(csim, smtp, "2025-03-01T00:00:00Z", "2025-03-20T00:00:00Z")
    r2 = calendar_view(csim, smtp, "2025-03-01T00:00:00Z", "2025-03-20T00:00:00Z")
    ids = [i["Id"] for i in items_of(r1)]
    assert ids == [i["Id"] for i in items_of(r2)] and len(set(ids)) == len(ids)
    assert weekly["id"] not in ids and daily["id"] not in ids
    assert sum(1 for i in items_of(r1) if i["Subject"] == "Weekly") == 4


def test_calendarview_max_entries_truncation(csim):
    smtp = fresh(csim, 3)
    create(csim, smtp, subject="S", start="2025-03-03T09:00:00Z", end="2025-03-03T10:00:00Z",
           recurrence={"pattern": "daily", "count": 10})
    r = assert_valid(calendar_view(csim, smtp, "2025-03-01T00:00:00Z", "2025-03-31T00:00:00Z", max_entries=4))
    rf = r.xpath("//m:RootFolder")[0]
    assert rf.get("TotalItemsInView") == "10" and rf.get("IncludesLastItemInRange") == "false"
    assert [i["Start"][:10] for i in items_of(r)] == ["2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06"]
    r = assert_valid(calendar_view(csim, smtp, "2025-03-01T00:00:00Z", "2025-03-31T00:00:00Z", max_entries=10))
    assert r.xpath("//m:RootFolder")[0].get("IncludesLastItemInRange") == "true"
    r = assert_valid(calendar_view(csim, smtp, "2025-03-01T00:00:00Z", "2025-03-31T00:00:00Z", max_entries=0))
    assert r.codes() == ["ErrorInvalidPagingMaxRows"]


def test_calendarview_errors(csim):
    r = assert_valid(calendar_view(csim, MBX % 1, "2025-03-05T00:00:00Z", "2025-03-04T00:00:00Z"))
    assert r.codes() == ["ErrorCalendarEndDateIsEarlierThanStartDate"]
    assert r.xpath("//m:FindItemResponseMessage/@ResponseClass") == ["Error"]
    r = assert_valid(calendar_view(csim, MBX % 1, "2025-01-01T00:00:00Z", "2027-01-02T00:00:00Z"))
    assert r.codes() == ["ErrorCalendarViewRangeTooBig"]
    r = assert_valid(calendar_view(csim, MBX % 1, "2025-01-01T00:00:00Z", "2027-01-01T00:00:00Z"))
    assert r.codes() == ["NoError"]
    r = assert_valid(calendar_view(csim, MBX % 1, "2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z", folder="inbox"))
    assert r.codes() == ["ErrorCalendarFolderIsInvalidForCalendarView"]
    r = assert_valid(calendar_view(csim, MBX % 1, "2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z",
                                   folder="id:AAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
    assert r.codes() == ["ErrorFolderNotFound"]
    r = assert_valid(calendar_view(csim, MBX % 1, "2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z",
                                   folder="id:not*base64"))
    assert r.codes() == ["ErrorInvalidIdMalformed"]


def test_calendarview_folder_id_and_time_zone_context(csim):
    smtp = fresh(csim, 4)
    create(csim, smtp, subject="Tokyo morning", start="2025-03-05T00:30:00Z", end="2025-03-05T01:00:00Z")
    fid = ctl(csim, "GET", "/mailboxes/%s/calendar" % smtp, expect=200)["folder_id"]
    # Offset-less StartDate/EndDate are read in the TimeZoneContext zone (Tokyo, UTC+9).
    tzc = '<t:TimeZoneContext><t:TimeZoneDefinition Id="Tokyo Standard Time"/></t:TimeZoneContext>'
    r = assert_valid(calendar_view(csim, smtp, "2025-03-05T09:00:00", "2025-03-05T10:00:00", folder="id:" + fid,
                                   extra_header=tzc))
    assert [i["Subject"] for i in items_of(r)] == ["Tokyo morning"]
    # Without the header they are UTC.
    r = assert_valid(calendar_view(csim, smtp, "2025-03-05T09:00:00", "2025-03-05T10:00:00"))
    assert items_of(r) == []
    # An unknown zone id is refused.
    r = calendar_view(csim, smtp, "2025-03-05T09:00:00", "2025-03-05T10:00:00",
                      extra_header='<t:TimeZoneContext><t:TimeZoneDefinition Id="Mars Standard Time"/>'
                                   '</t:TimeZoneContext>')
    assert r.status == 500 and r.fault_code() == "ErrorTimeZone"


def test_delegate_access_without_rights(csim):
    # The service account acting as itself, naming another user's calendar: no folder rights.
    r = assert_valid(calendar_view(csim, None, "2025-03-05T00:00:00Z", "2025-03-06T00:00:00Z",
                                   mailbox=MBX % 5, impersonate=False))
    assert r.codes() == ["ErrorAccessDenied"]
    r = assert_valid(calendar_view(csim, None, "2025-03-05T00:00:00Z", "2025-03-06T00:00:00Z",
                                   mailbox="nobody@contoso.example", impersonate=False))
    assert r.codes() == ["ErrorNonExistentMailbox"]
    # Impersonating a user and naming that user's own mailbox is fine.
    r = assert_valid(calendar_view(csim, MBX % 5, "2025-03-05T00:00:00Z", "2025-03-06T00:00:00Z",
                                   mailbox=MBX % 5))
    assert r.codes() == ["NoError"]
    r = assert_valid(calendar_view(csim, MBX % 5, "2025-03-05T00:00:00Z", "2025-03-06T00:00:00Z",
                                   mailbox=MBX % 6))
    assert r.codes() == ["ErrorAccessDenied"]


def test_shapes_and_schema_order(csim):
    smtp = MBX % 7
    reversed_props = list(reversed(PROPS)) + ["calendar:UID", "calendar:Organizer", "calendar:Location",
                                               "item:Categories", "calendar:StartTimeZone",
                                               "calendar:RecurrenceId", "item:DateTimeCreated",
                                               "item:LastModifiedTime", "calendar:IsMeeting",
                                               "calendar:IsRecurring", "calendar:MyResponseType"]
    r = assert_valid(calendar_view(csim, smtp, "2025-02-19T00:00:00Z", "2025-04-05T00:00:00Z",
                                   props=reversed_props))
    for ci in r.xpath("//t:CalendarItem"):
        names = children_names(ci)
        assert names[0] == "ItemId"
        for a, b in (("Subject", "Sensitivity"), ("Sensitivity", "DateTimeCreated"), ("UID", "Start"),
                     ("Start", "End"), ("LegacyFreeBusyStatus", "IsCancelled"), ("IsCancelled", "CalendarItemType"),
                     ("CalendarItemType", "Organizer"), ("Organizer", "StartTimeZone")):
            assert names.index(a) < names.index(b), names
        kind = ci.find("t:CalendarItemType", NS).text
        assert ("RecurrenceId" in names) == (kind in ("Occurrence", "Exception"))
        assert ci.find("t:IsRecurring", NS).text == ("true" if kind != "Single" else "false")
    r = assert_valid(calendar_view(csim, smtp, "2025-02-19T00:00:00Z", "2025-04-05T00:00:00Z", props=[]))
    for ci in r.xpath("//t:CalendarItem"):
        assert children_names(ci) == ["ItemId"]
    for base in ("Default", "AllProperties"):
        r = assert_valid(calendar_view(csim, smtp, "2025-02-19T00:00:00Z", "2025-04-05T00:00:00Z", base=base,
                                       props=[]))
        ci = r.xpath("//t:CalendarItem")[0]
        assert {"ItemId", "Subject", "Start", "End", "LegacyFreeBusyStatus", "CalendarItemType"} <= set(
            children_names(ci))
    # FindItem can't return the body.
    r = assert_valid(calendar_view(csim, smtp, "2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z",
                                   props=["item:Body"]))
    assert r.codes() == ["ErrorInvalidPropertyRequest"]


# -- FindItem without CalendarView ------------------------------------------------------------------


def test_finditem_without_view_lists_singles_and_masters(csim):
    smtp = MBX % 8
    listed = ctl(csim, "GET", "/mailboxes/%s/items" % smtp, expect=200)["items"]
    r = assert_valid(find_items(csim, smtp))
    items = items_of(r)
    assert sorted(i["Id"] for i in items) == sorted(i["id"] for i in listed)
    assert {i["CalendarItemType"] for i in items} <= {"Single", "RecurringMaster"}
    assert "RecurringMaster" in {i["CalendarItemType"] for i in items}
    # IndexedPageItemView paging.
    seen = []
    off = 0
    while True:
        r = assert_valid(find_items(csim, smtp, '<m:IndexedPageItemView MaxEntriesReturned="4" Offset="%d" '
                                                'BasePoint="Beginning"/>' % off))
        rf = r.xpath("//m:RootFolder")[0]
        page = items_of(r)
        seen += [i["Id"] for i in page]
        off = int(rf.get("IndexedPagingOffset"))
        assert rf.get("TotalItemsInView") == str(len(listed))
        if rf.get("IncludesLastItemInRange") == "true":
            break
        assert len(page) == 4
    assert seen == [i["Id"] for i in items]


# -- GetItem -------------------------------------------------------------------------------------------


def test_getitem_ids_occurrences_and_errors(csim):
    smtp = fresh(csim, 9)
    single = create(csim, smtp, subject="Single", start="2025-03-05T12:00:00Z", end="2025-03-05T13:00:00Z",
                    location="Raum 1", categories=["Rot"])
    master = create(csim, smtp, subject="Series", start="2025-03-03T09:00:00Z", end="2025-03-03T09:30:00Z",
                    recurrence={"pattern": "daily", "count": 5})
    mid = master["id"]
    ctl(csim, "PATCH", "/mailboxes/%s/items/%s/occurrences/2" % (smtp, q(mid)), {"subject": "Changed"}, expect=200)
    ctl(csim, "DELETE", "/mailboxes/%s/items/%s/occurrences/4" % (smtp, q(mid)), expect=200)
    r = calendar_view(csim, smtp, "2025-03-03T00:00:00Z", "2025-03-04T00:00:00Z")
    occ1 = items_of(r)[0]["Id"]
    ids = ('<t:ItemId Id="%s" ChangeKey="DwAAABYAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"/>' % single["id"]  # stale ck: fine
           + '<t:OccurrenceItemId RecurringMasterId="%s" InstanceIndex="2"/>' % mid
           + '<t:RecurringMasterItemId OccurrenceId="%s"/>' % occ1
           + '<t:ItemId Id="%s"/>' % occ1
           + '<t:OccurrenceItemId RecurringMasterId="%s" InstanceIndex="4"/>' % mid
           + '<t:OccurrenceItemId RecurringMasterId="%s" InstanceIndex="9"/>' % mid
           + '<t:OccurrenceItemId RecurringMasterId="%s" InstanceIndex="1"/>' % single["id"]
           + '<t:RecurringMasterItemId OccurrenceId="%s"/>' % single["id"]
           + '<t:ItemId Id="%s"/>' % unknown_id(single["id"])
           + '<t:ItemId Id="this is not an id"/>')
    props = PROPS + ["calendar:UID", "calendar:RecurrenceId", "calendar:Location", "item:Categories",
                     "calendar:Organizer", "calendar:StartTimeZone"]
    r = assert_valid(get_item(csim, smtp, ids, props=props))
    assert r.codes() == ["NoError", "NoError", "NoError", "NoError",
                         "ErrorCalendarOccurrenceIsDeletedFromRecurrence",
                         "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
                         "ErrorCalendarCannotUseIdForRecurringMasterId",
                         "ErrorCalendarCannotUseIdForOccurrenceId",
                         "ErrorItemNotFound", "ErrorInvalidIdMalformed"]
    msgs = r.xpath("//m:GetItemResponseMessage")
    assert len(msgs) == 10
    got = [items_of_el(m) for m in msgs[:4]]
    assert got[0]["Subject"] == "Single" and got[0]["Location"] == "Raum 1"
    assert got[0]["CalendarItemType"] == "Single" and got[0]["Id"] == single["id"]
    assert got[0]["ChangeKey"] == single["change_key"]
    assert got[1]["Subject"] == "Changed" and got[1]["CalendarItemType"] == "Exception"
    assert got[1]["RecurrenceId"] == "2025-03-04T09:00:00Z"
    assert got[2]["CalendarItemType"] == "RecurringMaster" and got[2]["Id"] == mid
    assert got[3]["CalendarItemType"] == "Occurrence" and got[3]["Start"] == "2025-03-03T09:00:00Z"
    assert got[1]["UID"] == got[2]["UID"] == got[3]["UID"] != got[0]["UID"]
    cats = msgs[0].xpath(".//t:Categories/t:String/text()", namespaces=NS)
    assert cats == ["Rot"]
    tz = msgs[0].xpath(".//t:StartTimeZone", namespaces=NS)[0]
    assert tz.get("Id") == "UTC"
    # Error messages carry an empty m:Items, as Exchange's do.
    assert msgs[4].find("m:Items", NS) is not None and len(msgs[4].find("m:Items", NS)) == 0


def unknown_id(iid):
    """A well-formed id of the same mailbox that names no item (another message counter)."""
    raw = base64.b64decode(iid)
    return base64.b64encode(raw[:-8] + b"\x00\x00\x7f\x7f\x7f\x7f\x00\x00").decode()


def items_of_el(msg):
    ci = msg.xpath(".//t:CalendarItem", namespaces=NS)[0]
    d = {etree.QName(c).localname: c.text for c in ci}
    iid = ci.find("t:ItemId", NS)
    d["Id"], d["ChangeKey"] = iid.get("Id"), iid.get("ChangeKey")
    return d


def test_getitem_allproperties_master_series_structure(csim):
    smtp = fresh(csim, 10)
    master = create(csim, smtp, subject="Weekly", start="2025-03-04T13:00:00Z", end="2025-03-04T14:00:00Z",
                    time_zone="W. Europe Standard Time",
                    recurrence={"pattern": "weekly", "days": ["Tuesday", "Thursday"], "count": 6}, body="Agenda")
    mid = master["id"]
    ctl(csim, "PATCH", "/mailboxes/%s/items/%s/occurrences/3" % (smtp, q(mid)),
        {"start": "2025-03-11T15:00:00Z", "end": "2025-03-11T16:00:00Z"}, expect=200)
    ctl(csim, "DELETE", "/mailboxes/%s/items/%s/occurrences/5" % (smtp, q(mid)), expect=200)
    for base in ("AllProperties", "Default"):
        r = assert_valid(get_item(csim, smtp, '<t:ItemId Id="%s"/>' % mid, base=base, props=[]))
        assert r.codes() == ["NoError"]
    r = assert_valid(get_item(csim, smtp, '<t:ItemId Id="%s"/>' % mid, base="AllProperties", props=[],
                              body_type="Text"))
    ci = r.xpath("//t:CalendarItem")[0]
    assert ci.find("t:Body", NS).text == "Agenda" and ci.find("t:Body", NS).get("BodyType") == "Text"
    wr = ci.find("t:Recurrence/t:WeeklyRecurrence", NS)
    assert wr.find("t:DaysOfWeek", NS).text == "Tuesday Thursday"
    nr = ci.find("t:Recurrence/t:NumberedRecurrence", NS)
    assert nr.find("t:StartDate", NS).text == "2025-03-04+01:00"
    assert nr.find("t:NumberOfOccurrences", NS).text == "6"
    mo = ci.findall("t:ModifiedOccurrences/t:Occurrence", NS)
    assert [o.find("t:OriginalStart", NS).text for o in mo] == ["2025-03-11T13:00:00Z"]
    assert [o.find("t:Start", NS).text for o in mo] == ["2025-03-11T15:00:00Z"]
    do = ci.findall("t:DeletedOccurrences/t:DeletedOccurrence/t:Start", NS)
    assert [d.text for d in do] == ["2025-03-18T13:00:00Z"]
    assert ci.find("t:FirstOccurrence/t:Start", NS).text == "2025-03-04T13:00:00Z"
    assert ci.find("t:LastOccurrence/t:Start", NS).text == "2025-03-20T13:00:00Z"
    assert ci.find("t:IsRecurring", NS).text == "false"  # Exchange's quirk for masters
    assert ci.find("t:StartTimeZone", NS).get("Id") == "W. Europe Standard Time"
    # The exception's id from ModifiedOccurrences works with GetItem.
    occ_id = mo[0].find("t:ItemId", NS).get("Id")
    r = assert_valid(get_item(csim, smtp, '<t:ItemId Id="%s"/>' % occ_id))
    assert items_of(r)[0]["CalendarItemType"] == "Exception"


def test_non_ascii_round_trip(csim):
    smtp = fresh(csim, 11)
    subject = "Besprechung: Überprüfung — 会议 🚀 <&> \"ok\""
    it = create(csim, smtp, subject=subject, start="2025-03-05T12:00:00Z", end="2025-03-05T13:00:00Z",
                location="Zürich – Raum „Süd“")
    r = assert_valid(calendar_view(csim, smtp, "2025-03-05T00:00:00Z", "2025-03-06T00:00:00Z",
                                   props=PROPS + ["calendar:Location"]))
    got = items_of(r)[0]
    assert got["Subject"] == subject and got["Location"] == "Zürich – Raum „Süd“"
    r = assert_valid(get_item(csim, smtp, '<t:ItemId Id="%s"/>' % it["id"]))
    assert items_of(r)[0]["Subject"] == subject
    assert ctl(csim, "GET", "/mailboxes/%s/items/%s" % (smtp, q(it["id"])), expect=200)["subject"] == subject


# -- change keys, moves -------------------------------------------------------------------------------


def test_change_key_changes_and_delete_moves_with_new_id(csim):
    smtp = fresh(csim, 12)
    it = create(csim, smtp, subject="A", start="2025-03-05T12:00:00Z", end="2025-03-05T13:00:00Z")
    upd = ctl(csim, "PATCH", "/mailboxes/%s/items/%s" % (smtp, q(it["id"])), {"subject": "B"}, expect=200)
    assert upd["id"] == it["id"] and upd["change_key"] != it["change_key"]
    r = assert_valid(get_item(csim, smtp, '<t:ItemId Id="%s"/>' % it["id"]))
    assert items_of(r)[0]["ChangeKey"] == upd["change_key"] and items_of(r)[0]["Subject"] == "B"
    d = ctl(csim, "DELETE", "/mailboxes/%s/items/%s" % (smtp, q(it["id"])), expect=200)
    assert d["id"] != it["id"] and d["folder"] == "deleteditems"
    r = assert_valid(get_item(csim, smtp, '<t:ItemId Id="%s"/>' % it["id"]))
    assert r.codes() == ["ErrorItemNotFound"]
    r = assert_valid(get_item(csim, smtp, '<t:ItemId Id="%s"/>' % d["id"], props=["item:ParentFolderId"]))
    assert r.codes() == ["NoError"]
    r = assert_valid(find_items(csim, smtp, folder="deleteditems"))
    assert [i["Id"] for i in items_of(r)] == [d["id"]]
    r = assert_valid(find_items(csim, smtp))
    assert items_of(r) == []
    # Hard delete from Deleted Items.
    ctl(csim, "DELETE", "/mailboxes/%s/items/%s?hard=1" % (smtp, q(d["id"])), expect=200)
    r = assert_valid(get_item(csim, smtp, '<t:ItemId Id="%s"/>' % d["id"]))
    assert r.codes() == ["ErrorItemNotFound"]


# -- SyncFolderItems ------------------------------------------------------------------------------------


def sync_changes(r):
    out = []
    for c in r.xpath("//m:Changes/*"):
        kind = etree.QName(c).localname
        iid = c.find(".//t:ItemId", NS)
        out.append((kind, iid.get("Id"), iid.get("ChangeKey")))
    return out


def sync_all(sim, smtp, state=None, max_changes=512):
    allc = []
    calls = 0
    while True:
        r = assert_valid(sync(sim, smtp, state, max_changes))
        assert r.codes() == ["NoError"]
        calls += 1
        allc += sync_changes(r)
        state = r.xpath("//m:SyncState")[0].text
        if r.xpath("//m:IncludesLastItemInRange")[0].text == "true":
            return allc, state, calls


def test_sync_full_then_delta(csim):
    smtp = MBX % 13
    listed = ctl(csim, "GET", "/mailboxes/%s/items" % smtp, expect=200)["items"]
    changes, state, _ = sync_all(csim, smtp)
    assert sorted(c[1] for c in changes) == sorted(i["id"] for i in listed)
    assert {c[0] for c in changes} == {"Create"}
    assert state.startswith("H4sI")
    # Nothing changed: an empty delta, same answer again.
    r = assert_valid(sync(csim, smtp, state))
    assert sync_changes(r) == [] and r.xpath("//m:IncludesLastItemInRange")[0].text == "true"
    # Create, update, delete (moved), occurrence edit -> Create, Update, Delete, Update(master).
    new = create(csim, smtp, subject="New", start="2025-03-06T12:00:00Z", end="2025-03-06T13:00:00Z")
    single = next(i for i in listed if i["type"] == "Single")
    master = next(i for i in listed if i["type"] == "RecurringMaster")
    upd = ctl(csim, "PATCH", "/mailboxes/%s/items/%s" % (smtp, q(single["id"])), {"status": "OOF"}, expect=200)
    victim = next(i for i in listed if i["type"] == "Single" and i["id"] != single["id"])
    ctl(csim, "DELETE", "/mailboxes/%s/items/%s" % (smtp, q(victim["id"])), expect=200)
    idx = next(i for i in range(2, 30) if not any(e["index"] == i for e in master["exceptions"])
               and not any(e["index"] == i for e in master["deleted_occurrences"]))
    m2 = ctl(csim, "PATCH", "/mailboxes/%s/items/%s/occurrences/%d" % (smtp, q(master["id"]), idx),
             {"status": "Free"}, expect=200)["master"]
    r = assert_valid(sync(csim, smtp, state, props=["item:Subject", "calendar:CalendarItemType"]))
    got = sync_changes(r)
    assert got == [("Create", new["id"], new["change_key"]), ("Update", single["id"], upd["change_key"]),
                   ("Delete", victim["id"], None), ("Update", master["id"], m2["change_key"])]
    assert r.xpath("//t:Create/t:CalendarItem/t:Subject/text()") == ["New"]
    assert r.xpath("//t:Update/t:CalendarItem/t:CalendarItemType/text()") == ["Single", "RecurringMaster"]
    state2 = r.xpath("//m:SyncState")[0].text
    assert sync_changes(assert_valid(sync(csim, smtp, state2))) == []
    # The old state still works and gives the same delta (states are positions).
    assert sync_changes(assert_valid(sync(csim, smtp, state))) == got


def test_sync_paging_and_ignore(csim):
    smtp = MBX % 14
    listed = ctl(csim, "GET", "/mailboxes/%s/items" % smtp, expect=200)["items"]
    changes, state, calls = sync_all(csim, smtp, max_changes=3)
    assert calls == -(-len(listed) // 3)
    ids = [c[1] for c in changes]
    assert len(ids) == len(set(ids)) == len(listed)
    r = assert_valid(sync(csim, smtp, None, max_changes=3))
    assert len(sync_changes(r)) == 3 and r.xpath("//m:IncludesLastItemInRange")[0].text == "false"
    # Ignore: the listed ids are left out of the answer.
    r = assert_valid(sync(csim, smtp, None, ignore=[listed[0]["id"]]))
    assert listed[0]["id"] not in [c[1] for c in sync_changes(r)]
    assert len(sync_changes(r)) == len(listed) - 1


def test_sync_invalid_states(csim):
    smtp = MBX % 15
    _, state, _ = sync_all(csim, smtp)
    for bad in ("H4sIAAAAAAAEAAAAAAAAAAAAAA==", "garbage", state[:-12] + "AAAAAAAAAAA=", state[:30]):
        r = assert_valid(sync(csim, smtp, bad))
        assert r.codes() == ["ErrorInvalidSyncStateData"], bad
    # Another mailbox's state is refused too.
    r = assert_valid(sync(csim, MBX % 16, state))
    assert r.codes() == ["ErrorInvalidSyncStateData"]
    # MaxChangesReturned outside 1..512 fails schema validation.
    r = sync(csim, smtp, None, max_changes=513)
    assert r.status == 500 and r.fault_code() == "ErrorSchemaValidation"


# -- GetFolder --------------------------------------------------------------------------------------------


def get_folder(sim, smtp, folders, base="IdOnly", extended=True, fields=()):
    ap = "".join('<t:FieldURI FieldURI="%s"/>' % f for f in fields)
    if extended:
        ap += ('<t:ExtendedFieldURI PropertyTag="0x670A" PropertyType="SystemTime"/>'
               '<t:ExtendedFieldURI PropertyTag="0x670B" PropertyType="Integer"/>')
    ap = "<t:AdditionalProperties>%s</t:AdditionalProperties>" % ap if ap else ""
    body = ("<m:GetFolder><m:FolderShape><t:BaseShape>%s</t:BaseShape>%s</m:FolderShape><m:FolderIds>%s"
            "</m:FolderIds></m:GetFolder>" % (base, ap, "".join(folder_xml(f) for f in folders)))
    return ews.call(sim, body, impersonate=smtp)


def folder_props(r):
    out = {}
    for ep in r.xpath("//t:ExtendedProperty"):
        out[ep.find("t:ExtendedFieldURI", NS).get("PropertyTag")] = ep.find("t:Value", NS).text
    return out


def test_getfolder_calendar_and_change_probe(csim):
    smtp = fresh(csim, 17)
    r = assert_valid(get_folder(csim, smtp, ["calendar"], base="AllProperties"))
    f = r.xpath("//t:CalendarFolder")[0]
    assert [etree.QName(c).localname for c in f][:6] == ["FolderId", "ParentFolderId", "FolderClass", "DisplayName",
                                                         "TotalCount", "ChildFolderCount"]
    assert f.find("t:FolderClass", NS).text == "IPF.Appointment"
    assert f.find("t:DisplayName", NS).text == "Calendar"
    assert f.find("t:TotalCount", NS).text == "0"
    info = ctl(csim, "GET", "/mailboxes/%s/calendar" % smtp)
    assert f.find("t:FolderId", NS).get("Id") == info["folder_id"]
    p1 = folder_props(r)
    assert set(p1) == {"0x670a", "0x670b"}
    csim.control("POST", "/clock", {"shift": 120}, expect=200)
    try:
        it = create(csim, smtp, subject="x", start="2025-03-06T12:00:00Z", end="2025-03-06T13:00:00Z")
        ctl(csim, "DELETE", "/mailboxes/%s/items/%s" % (smtp, q(it["id"])), expect=200)
    finally:
        csim.control("POST", "/clock", {"set": NOW}, expect=200)
    r = assert_valid(get_folder(csim, smtp, ["calendar"]))
    p2 = folder_props(r)
    assert p2["0x670a"] > p1["0x670a"]
    assert int(p2["0x670b"]) == int(p1["0x670b"]) + 1
    assert children_names(r.xpath("//t:CalendarFolder")[0]) == ["FolderId", "ExtendedProperty", "ExtendedProperty"]
    # Default shape, several folders in one request, one unknown.
    r = assert_valid(get_folder(csim, smtp, ["calendar", "deleteditems", "id:AAAAAAAAAAAA"], base="Default",
                                extended=False))
    assert r.codes() == ["NoError", "NoError", "ErrorFolderNotFound"]
    assert r.xpath("//t:Folder/t:DisplayName/text()") == ["Deleted Items"]
    assert r.xpath("//t:Folder/t:TotalCount/text()") == ["1"]
    r = assert_valid(get_folder(csim, None, ["calendar"], extended=False))
    assert r.codes() == ["NoError"]


# -- GetUserAvailability --------------------------------------------------------------------------------

UTC_TZ = ("<t:TimeZone><t:Bias>0</t:Bias><t:StandardTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time>"
          "<t:DayOrder>1</t:DayOrder><t:Month>1</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime>"
          "<t:DaylightTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>1</t:DayOrder><t:Month>1</t:Month>"
          "<t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime></t:TimeZone>")


def availability(sim, addresses, start, end, view="FreeBusyMerged", interval=60, tz=UTC_TZ, impersonate=None):
    mbs = "".join("<t:MailboxData><t:Email><t:Address>%s</t:Address></t:Email><t:AttendeeType>Required"
                  "</t:AttendeeType><t:ExcludeConflicts>false</t:ExcludeConflicts></t:MailboxData>" % a
                  for a in addresses)
    body = ("<m:GetUserAvailabilityRequest>%s<m:MailboxDataArray>%s</m:MailboxDataArray>"
            "<t:FreeBusyViewOptions><t:TimeWindow><t:StartTime>%s</t:StartTime><t:EndTime>%s</t:EndTime>"
            "</t:TimeWindow><t:MergedFreeBusyIntervalInMinutes>%d</t:MergedFreeBusyIntervalInMinutes>"
            "<t:RequestedView>%s</t:RequestedView></t:FreeBusyViewOptions></m:GetUserAvailabilityRequest>"
            % (tz, mbs, start, end, interval, view))
    return ews.call(sim, body, impersonate=impersonate)


def test_availability_limits(csim):
    many = [MBX % 1] * 101
    r = availability(csim, many, "2025-03-05T00:00:00", "2025-03-06T00:00:00")
    assert r.status == 500 and r.fault_code() == "ErrorMailboxDataArrayTooBig"
    r = assert_valid(availability(csim, [MBX % 1] * 100, "2025-03-05T00:00:00", "2025-03-06T00:00:00"))
    assert len(r.xpath("//m:FreeBusyResponse")) == 100
    r = availability(csim, [MBX % 1], "2025-03-01T00:00:00", "2025-04-12T00:00:01")
    assert r.fault_code() == "ErrorTimeIntervalTooBig"
    assert_valid(availability(csim, [MBX % 1], "2025-03-01T00:00:00", "2025-04-12T00:00:00"))
    for bad in (4, 1441):
        r = availability(csim, [MBX % 1], "2025-03-05T00:00:00", "2025-03-06T00:00:00", interval=bad)
        assert r.fault_code() == "ErrorInvalidMergedFreeBusyInterval"
    r = availability(csim, [MBX % 1], "2025-03-05T00:00:00", "2025-03-06T00:00:00", view="None")
    assert r.fault_code() == "ErrorInvalidFreeBusyViewType"


def test_availability_merge_order_and_unknown(csim):
    a = fresh(csim, 18)
    create(csim, a, subject="Busy", start="2025-03-05T09:00:00Z", end="2025-03-05T10:00:00Z", status="Busy")
    create(csim, a, subject="Tent", start="2025-03-05T09:30:00Z", end="2025-03-05T11:00:00Z", status="Tentative")
    create(csim, a, subject="OOF", start="2025-03-05T13:00:00Z", end="2025-03-05T13:15:00Z", status="OOF")
    create(csim, a, subject="Free", start="2025-03-05T15:00:00Z", end="2025-03-05T16:00:00Z", status="Free")
    create(csim, a, subject="Elsewhere", start="2025-03-05T16:00:00Z", end="2025-03-05T17:00:00Z",
           status="WorkingElsewhere")
    create(csim, a, subject="Long", start="2025-03-04T22:00:00Z", end="2025-03-05T01:00:00Z", status="Busy")
    b = fresh(csim, 19)
    r = assert_valid(availability(csim, [a, "ghost@contoso.example", b], "2025-03-05T00:00:00",
                                  "2025-03-05T18:00:00"))
    resp = r.xpath("//m:FreeBusyResponse")
    assert len(resp) == 3
    assert [x.xpath("m:ResponseMessage/m:ResponseCode/text()", namespaces=NS)[0] for x in resp] == [
        "NoError", "ErrorMailRecipientNotFound", "NoError"]
    merged = resp[0].xpath(".//t:MergedFreeBusy/text()", namespaces=NS)[0]
    # One digit per hour 00..18: the highest status of the hour wins (Busy over Tentative).
    assert merged == "2" + "0" * 8 + "21" + "00" + "3" + "00" + "4" + "0"
    events = resp[0].xpath(".//t:CalendarEvent", namespaces=NS)
    got = [(e.find("t:StartTime", NS).text, e.find("t:BusyType", NS).text) for e in events]
    # Whole events, naive times in the request zone, Free items not published.
    assert got == [("2025-03-04T22:00:00", "Busy"), ("2025-03-05T09:00:00", "Busy"),
                   ("2025-03-05T09:30:00", "Tentative"), ("2025-03-05T13:00:00", "OOF"),
                   ("2025-03-05T16:00:00", "WorkingElsewhere")]
    assert resp[1].xpath(".//t:FreeBusyViewType/text()", namespaces=NS) == ["None"]
    assert resp[2].xpath(".//t:MergedFreeBusy/text()", namespaces=NS) == ["0" * 18]
    assert resp[0].find("m:FreeBusyView/t:WorkingHours", NS) is not None


def test_availability_details_permissions_and_private(csim):
    a = fresh(csim, 20)
    create(csim, a, subject="Öffentlich", start="2025-03-05T09:00:00Z", end="2025-03-05T10:00:00Z",
           location="Raum 5")
    create(csim, a, subject="Geheim", start="2025-03-05T11:00:00Z", end="2025-03-05T12:00:00Z",
           sensitivity="Private", location="Arzt")
    # Default permission AvailabilityOnly: Detailed is downgraded to FreeBusy for others.
    r = assert_valid(availability(csim, [a], "2025-03-05T00:00:00", "2025-03-06T00:00:00", view="DetailedMerged",
                                  impersonate=MBX % 21))
    assert r.xpath("//t:FreeBusyViewType/text()") == ["FreeBusyMerged"]
    assert r.xpath("//t:CalendarEventDetails") == []
    ctl(csim, "POST", "/mailboxes/%s/calendar/permissions" % a, {"default": "LimitedDetails"}, expect=200)
    try:
        r = assert_valid(availability(csim, [a], "2025-03-05T00:00:00", "2025-03-06T00:00:00", view="Detailed",
                                      impersonate=MBX % 21))
        assert r.xpath("//t:FreeBusyViewType/text()") == ["Detailed"]
        dets = r.xpath("//t:CalendarEventDetails")
        assert [d.findtext("t:Subject", None, NS) for d in dets] == ["Öffentlich", None]
        assert [d.findtext("t:Location", None, NS) for d in dets] == ["Raum 5", None]
        assert [d.findtext("t:IsPrivate", None, NS) for d in dets] == ["false", "true"]
        # The owner sees details too, but private items still show none.
        r = assert_valid(availability(csim, [a], "2025-03-05T00:00:00", "2025-03-06T00:00:00", view="Detailed",
                                      impersonate=a))
        assert r.xpath("//t:CalendarEventDetails/t:Subject/text()") == ["Öffentlich"]
        ctl(csim, "POST", "/mailboxes/%s/calendar/permissions" % a, {"default": "None"}, expect=200)
        r = assert_valid(availability(csim, [a], "2025-03-05T00:00:00", "2025-03-06T00:00:00",
                                      impersonate=MBX % 21))
        assert r.codes() == ["ErrorNoFreeBusyAccess"]
    finally:
        ctl(csim, "POST", "/mailboxes/%s/calendar/permissions" % a, {"default": "AvailabilityOnly"}, expect=200)


def test_availability_time_zone(csim):
    a = fresh(csim, 22)
    create(csim, a, subject="x", start="2025-03-05T09:00:00Z", end="2025-03-05T10:00:00Z")
    tz = ("<t:TimeZone><t:Bias>-60</t:Bias><t:StandardTime><t:Bias>0</t:Bias><t:Time>03:00:00</t:Time>"
          "<t:DayOrder>5</t:DayOrder><t:Month>10</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime>"
          "<t:DaylightTime><t:Bias>-60</t:Bias><t:Time>02:00:00</t:Time><t:DayOrder>5</t:DayOrder>"
          "<t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime></t:TimeZone>")
    r = assert_valid(availability(csim, [a], "2025-03-05T00:00:00", "2025-03-06T00:00:00", tz=tz))
    assert r.xpath("//t:CalendarEvent/t:StartTime/text()") == ["2025-03-05T10:00:00"]
    merged = r.xpath("//t:MergedFreeBusy/text()")[0]
    assert merged[10] == "2" and merged.count("2") == 1


# -- control API ------------------------------------------------------------------------------------------


def test_control_errors(csim):
    st, doc = csim.control("GET", "/mailboxes/nobody@contoso.example/items")
    assert st == 404 and "error" in doc
    smtp = MBX % 23
    st, doc = csim.control("POST", "/mailboxes/%s/items" % smtp, {"subject": "x"})
    assert st == 400 and "start" in doc["error"]
    st, doc = csim.control("POST", "/mailboxes/%s/items" % smtp,
                           {"subject": "x", "start": "2025-03-05T10:00:00", "end": "2025-03-05T11:00:00Z"})
    assert st == 400
    st, doc = csim.control("POST", "/mailboxes/%s/items" % smtp,
                           {"subject": "x", "start": "2025-03-05T10:00:00Z", "end": "2025-03-05T09:00:00Z"})
    assert st == 400 and "ErrorCalendarEndDateIsEarlierThanStartDate" in doc["error"]
    st, doc = csim.control("PATCH", "/mailboxes/%s/items/%s" % (smtp, q("AAMkADnope")), {"subject": "y"})
    assert st == 404
    st, doc = csim.control("DELETE", "/mailboxes/%s/items/%s" % (smtp, q("AAMkADnope")))
    assert st == 404
    single = next(i for i in ctl(csim, "GET", "/mailboxes/%s/items" % smtp)["items"] if i["type"] == "Single")
    st, doc = csim.control("PATCH", "/mailboxes/%s/items/%s/occurrences/1" % (smtp, q(single["id"])), {})
    assert st == 400
    master = next(i for i in ctl(csim, "GET", "/mailboxes/%s/items" % smtp)["items"] if i["type"] != "Single")
    st, doc = csim.control("DELETE", "/mailboxes/%s/items/%s/occurrences/999" % (smtp, q(master["id"])))
    assert st == 404
    st, doc = csim.control("GET", "/mailboxes/%s/view?start=2025-03-05T00:00:00Z" % smtp)
    assert st == 400
    v = ctl(csim, "GET", "/mailboxes/%s/view?start=2025-03-01T00:00:00Z&end=2025-03-20T00:00:00Z" % smtp,
            expect=200)
    r = calendar_view(csim, smtp, "2025-03-01T00:00:00Z", "2025-03-20T00:00:00Z")
    assert [x["id"] for x in v["items"]] == [i["Id"] for i in items_of(r)]


def test_regenerate_changes_ids(csim):
    smtp = MBX % 24
    before = ctl(csim, "GET", "/mailboxes/%s/items" % smtp)["items"]
    _, state, _ = sync_all(csim, smtp)
    out = ctl(csim, "POST", "/mailboxes/%s/calendar/regenerate" % smtp, {}, expect=200)
    after = ctl(csim, "GET", "/mailboxes/%s/items" % smtp)["items"]
    assert out["items"] == len(after) >= 10
    assert not ({i["id"] for i in before} & {i["id"] for i in after})
    changes, _, _ = sync_all(csim, smtp, state)
    kinds = sorted({c[0] for c in changes})
    assert kinds == ["Create", "Delete"]
    assert sum(1 for c in changes if c[0] == "Delete") == len(before)


# -- determinism and scale ----------------------------------------------------------------------------------


def _fingerprint(sim, smtp):
    r = assert_valid(calendar_view(sim, smtp, "2025-02-19T00:00:00Z", "2025-04-05T00:00:00Z",
                                   props=PROPS + ["calendar:UID"]))
    return [(i["Id"], i["ChangeKey"], i["Subject"], i["Start"], i["UID"]) for i in items_of(r)]


def test_determinism_across_processes(sim_factory):
    a = sim_factory("--mailboxes", "5", "--seed", "99", "--freeze-clock", NOW)
    b = sim_factory("--mailboxes", "5", "--seed", "99", "--freeze-clock", NOW)
    c = sim_factory("--mailboxes", "5", "--seed", "100", "--freeze-clock", NOW)
    fa = _fingerprint(a, MBX % 3)
    assert fa == _fingerprint(b, MBX % 3)
    assert [x[2:4] for x in fa] != [x[2:4] for x in _fingerprint(c, MBX % 3)]


def test_50000_mailboxes_generate_only_on_first_touch(sim_factory):
    # (How fast that is is measured by bench/, not asserted here.)
    s = sim_factory("--mailboxes", "50000", "--freeze-clock", NOW)
    r = assert_valid(calendar_view(s, MBX % 50000, "2025-03-01T00:00:00Z", "2025-03-20T00:00:00Z"))
    assert r.codes() == ["NoError"] and items_of(r)
    assert s.control("GET", "/mailboxes/%s" % (MBX % 50000), expect=200)[1]["calendar_generated"] is True
    assert s.control("GET", "/mailboxes/%s" % (MBX % 49999), expect=200)[1]["calendar_generated"] is False
    r = calendar_view(s, MBX % 50001, "2025-03-01T00:00:00Z", "2025-03-20T00:00:00Z")
    assert r.fault_code() == "ErrorNonExistentMailbox"
    health = s.control("GET", "/health", expect=200)[1]
    assert health["mailboxes"] == 50000


# -- interoperability with exchangelib (a real third-party client) -----------------------------------


def test_exchangelib_reads_what_the_calendar_operations_answer(csim):
    from exchangelib import BASIC, IMPERSONATION, Account, Build, Configuration, Credentials, FailFast, Version
    from exchangelib import EWSDateTime, EWSTimeZone
    from exchangelib.protocol import close_connections

    smtp = MBX % 25
    config = Configuration(service_endpoint=csim.ews, credentials=Credentials("svc@contoso.example", "Passw0rd!"),
                           auth_type=BASIC, version=Version(build=Build(15, 1)), retry_policy=FailFast(),
                           max_connections=2)
    utc = EWSTimeZone("UTC")
    try:
        a = Account(primary_smtp_address=smtp, config=config, autodiscover=False, access_type=IMPERSONATION,
                    default_timezone=utc)
        listed = ctl(csim, "GET", "/mailboxes/%s/items" % smtp)["items"]
        # GetFolder (exchangelib asks for its own property set) and FindItem without a view.
        assert a.calendar.total_count == len(listed)
        found = list(a.calendar.all().only("subject", "start", "type"))
        assert sorted(i.id for i in found) == sorted(i["id"] for i in listed)
        # SyncFolderItems: a full sync, paged.
        changes = list(a.calendar.sync_items(max_changes_returned=5, only_fields=["subject"]))
        assert sorted(it.id for kind, it in changes) == sorted(i["id"] for i in listed)
        assert {kind for kind, _it in changes} == {"create"}
        assert a.calendar.item_sync_state
        new = create(csim, smtp, subject="Über exchangelib", start="2025-03-06T12:00:00Z",
                     end="2025-03-06T13:00:00Z")
        delta = list(a.calendar.sync_items(only_fields=["subject"]))
        assert [(k, it.id, it.subject) for k, it in delta] == [("create", new["id"], "Über exchangelib")]
        # GetItem, with the master's series structure.
        master = next(i for i in listed if i["type"] == "RecurringMaster")
        got = a.calendar.get(id=master["id"])
        assert got.type == "RecurringMaster" and got.recurrence is not None and got.subject == master["subject"]
        # CalendarView and GetUserAvailability.
        start = EWSDateTime(2025, 3, 1, tzinfo=utc)
        end = EWSDateTime(2025, 3, 20, tzinfo=utc)
        view = list(a.calendar.view(start=start, end=end))
        assert view and {v.type for v in view} <= {"Single", "Occurrence", "Exception"}
        fb = list(a.protocol.get_free_busy_info(accounts=[(a, "Organizer", False)], start=start,
                                                end=start + (end - start) / 4, merged_free_busy_interval=30,
                                                requested_view="DetailedMerged"))
        # exchangelib sends GetUserAvailability without impersonation: the service account
        # has the default AvailabilityOnly right, so Exchange downgrades the view.
        assert len(fb) == 1 and fb[0].view_type == "FreeBusyMerged" and "2" in fb[0].merged
        assert fb[0].working_hours and fb[0].working_hours_timezone is not None
    finally:
        close_connections()


def test_get_server_time_zones_and_start_time_zone_definitions(csim):
    body = ('<m:GetServerTimeZones ReturnFullTimeZoneData="true"><m:Ids><t:Id>W. Europe Standard Time</t:Id>'
            "<t:Id>Pacific Standard Time</t:Id><t:Id>UTC</t:Id><t:Id>Tokyo Standard Time</t:Id></m:Ids>"
            "</m:GetServerTimeZones>")
    r = assert_valid(ews.call(csim, body))
    defs = r.xpath("//t:TimeZoneDefinition")
    assert [d.get("Id") for d in defs] == ["W. Europe Standard Time", "Pacific Standard Time", "UTC",
                                           "Tokyo Standard Time"]
    we = defs[0]
    assert [p.get("Bias") for p in we.findall("t:Periods/t:Period", NS)] == ["-PT1H", "-PT2H"]
    rules = [(t.findtext("t:TimeOffset", None, NS), t.findtext("t:Month", None, NS),
              t.findtext("t:DayOfWeek", None, NS), t.findtext("t:Occurrence", None, NS))
             for t in we.findall("t:TransitionsGroups/t:TransitionsGroup/t:RecurringDayTransition", NS)]
    assert rules == [("PT2H", "3", "Sunday", "-1"), ("PT3H", "10", "Sunday", "-1")]
    pst = [(t.findtext("t:Month", None, NS), t.findtext("t:Occurrence", None, NS))
           for t in defs[1].findall(".//t:RecurringDayTransition", NS)]
    assert pst == [("3", "2"), ("11", "1")]
    assert [p.get("Bias") for p in defs[2].findall("t:Periods/t:Period", NS)] == ["PT0H"]
    assert [p.get("Bias") for p in defs[3].findall("t:Periods/t:Period", NS)] == ["-PT9H"]
    r = assert_valid(ews.call(csim, '<m:GetServerTimeZones ReturnFullTimeZoneData="false"/>'))
    ids = r.xpath("//t:TimeZoneDefinition/@Id")
    assert len(ids) > 100 and "Central Asia Standard Time" in ids and not r.xpath("//t:Periods")
    r = assert_valid(ews.call(csim, "<m:GetServerTimeZones><m:Ids><t:Id>Mars Standard Time</t:Id></m:Ids>"
                                    "</m:GetServerTimeZones>"))
    assert r.codes() == ["ErrorTimeZone"]
    # GetItem's StartTimeZone carries the same full definition.
    smtp = fresh(csim, 26)
    it = create(csim, smtp, subject="tz", start="2025-03-05T12:00:00Z", end="2025-03-05T13:00:00Z",
                time_zone="Pacific Standard Time")
    r = assert_valid(get_item(csim, smtp, '<t:ItemId Id="%s"/>' % it["id"],
                              props=["calendar:StartTimeZone", "calendar:EndTimeZone"]))
    stz = r.xpath("//t:CalendarItem/t:StartTimeZone")[0]
    assert stz.get("Id") == "Pacific Standard Time" and stz.find("t:Periods", NS) is not None


def test_calendar_cache_regenerates_identically(sim_factory):
    # A cache of two calendars: unchanged calendars are dropped and come back identical
    # (same ids, change keys and times, even a day later on the sim clock); a changed one
    # is never dropped.
    s = sim_factory("--mailboxes", "6", "--calendar-cache", "2")
    before = {n: ctl(s, "GET", "/mailboxes/%s/items" % (MBX % n), expect=200) for n in (1, 2)}
    changed = create(s, MBX % 3, subject="Keep me", start="2030-01-01T10:00:00Z", end="2030-01-01T11:00:00Z")
    s.control("POST", "/clock", {"shift": 86400}, expect=200)
    for n in (4, 5, 6, 1, 2):  # evicts 1 and 2 (and later 4, 5) several times over
        ctl(s, "GET", "/mailboxes/%s/calendar" % (MBX % n), expect=200)
    assert ctl(s, "GET", "/mailboxes/%s" % (MBX % 4), expect=200)["calendar_generated"] is False
    for n in (1, 2):
        assert ctl(s, "GET", "/mailboxes/%s/items" % (MBX % n), expect=200) == before[n]
    kept = ctl(s, "GET", "/mailboxes/%s/items/%s" % (MBX % 3, q(changed["id"])), expect=200)
    assert kept["subject"] == "Keep me"
