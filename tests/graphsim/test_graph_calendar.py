"""Graph users, calendarView and events against the shared calendar model: the mapping of
Exchange's fields, instants as Graph writes them, paging, $select/$top/$orderby, Prefer
headers, recurring series expanded, and Graph's errors."""

import re
import urllib.parse

import pytest

import graphclient as gc
from graphclient import A, B, C, ONPREM, WINDOW

DT7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$")


@pytest.fixture(scope="module")
def gsim(module_sim_factory):
    return gc.graph_sim(module_sim_factory)


@pytest.fixture(scope="module")
def g(gsim):
    return gc.Graph(gsim)


def view(g, mailbox, query=WINDOW, headers=None):
    items, _ = g.all_pages("users/%s/calendarView?%s" % (mailbox, query), headers=headers)
    return items


def test_user_by_upn_and_by_id(g, gsim):
    doc = g.ok("users/" + A)
    assert doc["mail"] == A and doc["userPrincipalName"] == A and doc["displayName"] == "User 00001"
    assert re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", doc["id"])
    assert g.ok("users/" + doc["id"])["mail"] == A
    assert g.ok("users/" + A.upper())["id"] == doc["id"]
    # The directory knows on-premises users too (synced); only their mailbox is not in Graph.
    assert g.ok("users/" + ONPREM)["mail"] == ONPREM
    assert g.ok("users/%s?$select=mail" % A).keys() == {"@odata.context", "id", "mail"}
    assert gsim.control("GET", "/graph/mailboxes/" + A, expect=200)[1]["user_id"] == doc["id"]


def test_unknown_user(g):
    st, _, doc = g.get("users/nobody@contoso.example")
    assert st == 404 and doc["error"]["code"] == "Request_ResourceNotFound"
    st, _, doc = g.get("users/nobody@contoso.example/calendarView?" + WINDOW)
    assert st == 404 and doc["error"]["code"] == "ErrorInvalidUser"
    # An alias (a proxy address) is not a user principal name.
    st, _, doc = g.get("users/user00001.alias@contoso.example")
    assert st == 404


def test_onprem_mailbox_is_not_enabled_for_rest(g):
    for path in ("calendarView?" + WINDOW, "calendarView/delta?" + WINDOW, "events"):
        st, _, doc = g.get("users/%s/%s" % (ONPREM, path))
        assert st == 404, path
        assert doc["error"]["code"] == "MailboxNotEnabledForRESTAPI"
        assert doc["error"]["message"] == "REST API is not yet supported for this mailbox."


def test_calendar_view_shape(g, gsim):
    items = view(g, A)
    ctl = gsim.control("GET", "/mailboxes/%s/view?start=2000-01-01T00:00:00Z&end=2100-01-01T00:00:00Z" % A,
                       expect=200)[1]
    ctl = ctl["items"] if isinstance(ctl, dict) else ctl
    assert len(items) == len(ctl) > 10
    assert {i["id"] for i in items} == {gc.rest_id(v["id"]) for v in ctl}
    types = {i["type"] for i in items}
    assert "seriesMaster" not in types and {"singleInstance", "occurrence"} <= types
    for i in items:
        assert DT7.match(i["start"]["dateTime"]) and i["start"]["timeZone"] == "UTC"
        assert DT7.match(i["end"]["dateTime"]) and i["end"]["timeZone"] == "UTC"
        assert i["showAs"] in ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
        assert i["sensitivity"] in ("normal", "personal", "private", "confidential")
        assert i["@odata.etag"] == 'W/"%s"' % i["changeKey"]
        assert i["lastModifiedDateTime"].endswith("Z")
        if i["type"] in ("occurrence", "exception"):
            assert i["seriesMasterId"] and i["seriesMasterId"] != i["id"]
            assert i["iCalUId"] != i["seriesMasterId"]
        else:
            assert i["seriesMasterId"] is None
    occ = [i for i in items if i["type"] == "occurrence"]
    uids = [o["iCalUId"] for o in occ]
    assert len(occ) > 1 and len(set(uids)) == len(uids)  # each occurrence has its own iCalUId


def test_mapping_of_a_control_api_item(g, gsim):
    it = gc.create_item(gsim, B, subject="Mapped <&> ünïcode", start="2031-03-04T09:00:00Z",
                        end="2031-03-04T09:30:00Z", status="OOF", sensitivity="Private", location="Room 7",
                        categories=["Kunde"], organizer={"name": "Alex Wilber", "email": "alexw@contoso.example"})
    q = "startDateTime=2031-03-04T00:00:00Z&endDateTime=2031-03-05T00:00:00Z"
    (e,) = view(g, B, q)
    assert e["id"] == gc.rest_id(it["id"]) and e["changeKey"] == it["change_key"]
    assert e["subject"] == "Mapped <&> ünïcode"
    assert e["showAs"] == "oof" and e["sensitivity"] == "private" and e["type"] == "singleInstance"
    assert e["location"]["displayName"] == "Room 7" and e["categories"] == ["Kunde"]
    assert e["organizer"]["emailAddress"] == {"name": "Alex Wilber", "address": "alexw@contoso.example"}
    assert e["isOrganizer"] is False and e["responseStatus"]["response"] == "accepted"
    assert e["start"] == {"dateTime": "2031-03-04T09:00:00.0000000", "timeZone": "UTC"}
    assert e["iCalUId"] == it["uid"]
    gsim.control("PATCH", gc.item_path(B, it["id"]), {"cancelled": True, "status": "WorkingElsewhere"}, expect=200)
    (e,) = view(g, B, q)
    assert e["isCancelled"] is True and e["showAs"] == "workingElsewhere"
    d = gsim.control("POST", "/mailboxes/%s/items" % B, {"subject": "Off", "all_day": True, "start": "2031-03-06",
                                                          "end": "2031-03-07", "time_zone": "UTC"}, expect=201)[1]
    (e,) = view(g, B, "startDateTime=2031-03-06T00:00:00Z&endDateTime=2031-03-07T00:00:00Z")
    assert e["id"] == gc.rest_id(d["id"]) and e["isAllDay"] is True
    assert e["start"]["dateTime"] == "2031-03-06T00:00:00.0000000" and e["end"]["dateTime"] == "2031-03-07T00:00:00.0000000"


def test_all_day_events_are_not_converted(g, gsim):
    # Graph returns an all-day event's midnights as they are in the event's zone, whatever
    # Prefer: outlook.timezone asks for (the label follows the header).
    gsim.control("POST", "/mailboxes/%s/items" % C, {"subject": "Urlaub", "all_day": True, "start": "2033-05-02",
                                                      "end": "2033-05-03", "time_zone": "W. Europe Standard Time"},
                 expect=201)
    q = "startDateTime=2033-05-01T00:00:00Z&endDateTime=2033-05-04T00:00:00Z"
    for prefer, label in ((None, "UTC"), ('outlook.timezone="Pacific Standard Time"', "Pacific Standard Time")):
        (e,) = view(g, C, q, headers={"Prefer": prefer} if prefer else None)
        assert e["isAllDay"] is True and e["originalStartTimeZone"] == "W. Europe Standard Time"
        assert e["start"] == {"dateTime": "2033-05-02T00:00:00.0000000", "timeZone": label}
        assert e["end"] == {"dateTime": "2033-05-03T00:00:00.0000000", "timeZone": label}


def test_events_ending_at_the_window_start_are_left_out(g, gsim):
    gc.create_item(gsim, C, subject="edge", start="2032-01-01T09:00:00Z", end="2032-01-01T10:00:00Z")
    assert view(g, C, "startDateTime=2032-01-01T10:00:00Z&endDateTime=2032-01-01T11:00:00Z") == []
    assert len(view(g, C, "startDateTime=2032-01-01T09:59:00Z&endDateTime=2032-01-01T11:00:00Z")) == 1


def test_prefer_outlook_timezone(g, gsim):
    gc.create_item(gsim, C, subject="tz", start="2032-07-01T16:00:00Z", end="2032-07-01T17:00:00Z")
    q = "startDateTime=2032-07-01T00:00:00Z&endDateTime=2032-07-02T00:00:00Z"
    st, h, doc = g.get("users/%s/calendarView?%s" % (C, q), headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})
    assert st == 200 and h["preference-applied"] == 'outlook.timezone="Pacific Standard Time"'
    (e,) = doc["value"]
    assert e["start"] == {"dateTime": "2032-07-01T09:00:00.0000000", "timeZone": "Pacific Standard Time"}
    st, h, doc = g.get("users/%s/calendarView?%s" % (C, q), headers={"Prefer": 'outlook.timezone="Europe/Berlin"'})
    assert doc["value"][0]["start"]["dateTime"] == "2032-07-01T18:00:00.0000000"
    # Unknown zones are ignored: UTC, and no Preference-Applied.
    st, h, doc = g.get("users/%s/calendarView?%s" % (C, q), headers={"Prefer": 'outlook.timezone="Mars/Olympus"'})
    assert doc["value"][0]["start"]["timeZone"] == "UTC" and "preference-applied" not in h


def test_paging_defaults_to_ten_with_skip_links(g):
    doc = g.ok("users/%s/calendarView?%s" % (A, WINDOW))
    assert len(doc["value"]) == 10
    link = doc["@odata.nextLink"]
    u = urllib.parse.urlsplit(link)
    q = urllib.parse.parse_qs(u.query)
    assert u.path == "/v1.0/users/%s/calendarView" % A and q["$skip"] == ["10"]
    assert q["startDateTime"] == ["2000-01-01T00:00:00Z"]
    items, last = g.all_pages("users/%s/calendarView?%s" % (A, WINDOW))
    assert "@odata.nextLink" not in last and len({i["id"] for i in items}) == len(items)


def test_maxpagesize_and_top(g):
    st, h, doc = g.get("users/%s/calendarView?%s" % (A, WINDOW), headers={"Prefer": "odata.maxpagesize=3"})
    assert len(doc["value"]) == 3 and h["preference-applied"] == "odata.maxpagesize=3"
    a3 = view(g, A, WINDOW, headers={"Prefer": "odata.maxpagesize=3"})
    assert [i["id"] for i in a3] == [i["id"] for i in view(g, A)]
    doc = g.ok("users/%s/calendarView?%s&$top=4" % (A, WINDOW))
    assert len(doc["value"]) == 4 and "$top=4" in doc["@odata.nextLink"]
    doc = g.ok("users/%s/calendarView?%s&$top=5000" % (A, WINDOW))
    assert "@odata.nextLink" not in doc  # $top is capped at 1000, and the view is smaller
    st, _, doc = g.get("users/%s/calendarView?%s&$top=0" % (A, WINDOW))
    assert st == 400


def test_select_and_orderby(g):
    doc = g.ok("users/%s/calendarView?%s&$select=subject,start,showAs" % (A, WINDOW))
    for e in doc["value"]:
        assert set(e) == {"@odata.etag", "id", "subject", "start", "showAs"}
    assert "$select=subject,start,showAs" in urllib.parse.unquote(doc["@odata.nextLink"])
    st, _, doc = g.get("users/%s/calendarView?%s&$select=subject,bogus" % (A, WINDOW))
    assert st == 400 and doc["error"]["code"] == "RequestBroker--ParseUri"
    asc = [e["start"]["dateTime"] for e in view(g, A, WINDOW + "&$orderby=start/dateTime")]
    desc = [e["start"]["dateTime"] for e in view(g, A, WINDOW + "&$orderby=start/dateTime%20desc")]
    assert asc == sorted(asc) and desc == sorted(asc, reverse=True)
    st, _, _ = g.get("users/%s/calendarView?%s&$orderby=bogus" % (A, WINDOW))
    assert st == 400


def test_calendar_view_needs_a_window(g):
    for q in ("", "startDateTime=2030-01-01T00:00:00Z", "startDateTime=x&endDateTime=2030-01-01T00:00:00Z"):
        st, _, doc = g.get("users/%s/calendarView?%s" % (A, q))
        assert st == 400 and doc["error"]["code"] == "ErrorInvalidParameter", q
    st, _, doc = g.get("users/%s/calendarView" % A)
    assert "StartDateTime and EndDateTime" in doc["error"]["message"]
    # Offset-less instants are UTC; names are case-insensitive.
    assert g.get("users/%s/calendarview?startdatetime=2030-01-01T00:00:00&enddatetime=2030-01-02T00:00:00" % A)[0] == 200


def test_events_resource(g, gsim):
    items, _ = g.all_pages("users/%s/events" % A)
    stored = gsim.control("GET", "/mailboxes/%s/items" % A, expect=200)[1]
    stored = stored["items"] if isinstance(stored, dict) else stored
    assert {i["id"] for i in items} == {gc.rest_id(s["id"]) for s in stored}
    masters = [i for i in items if i["type"] == "seriesMaster"]
    assert masters and all(m["recurrence"]["pattern"]["type"] in ("daily", "weekly") for m in masters)
    m = masters[0]
    one = g.ok("users/%s/events/%s" % (A, m["id"]))
    assert one["id"] == m["id"] and one["recurrence"] == m["recurrence"]
    inst = g.ok("users/%s/events/%s/instances?%s&$top=1000" % (A, m["id"], WINDOW))["value"]
    assert inst and all(i["seriesMasterId"] == m["id"] for i in inst)
    occ = inst[0]
    assert g.ok("users/%s/events/%s" % (A, occ["id"]))["type"] in ("occurrence", "exception")
    st, _, doc = g.get("users/%s/events/AAMkAD-not-an-id" % A)
    assert st == 400 and doc["error"]["code"] == "ErrorInvalidIdMalformed"
    it = gc.create_item(gsim, A, subject="to delete")
    gsim.control("DELETE", gc.item_path(A, it["id"]), expect=200)
    st, _, doc = g.get("users/%s/events/%s" % (A, gc.rest_id(it["id"])))
    assert st == 404 and doc["error"]["code"] == "ErrorItemNotFound"


def test_path_errors(g):
    st, _, doc = g.get("me/calendarView?" + WINDOW)
    assert st == 400 and "delegated authentication flow" in doc["error"]["message"]
    st, _, doc = g.get("users/%s/mailFolders" % A)
    assert st == 400 and doc["error"]["message"] == "Resource not found for the segment 'mailFolders'."
    st, _, doc = g.call("POST", "users/%s/calendarView?%s" % (A, WINDOW), body={})
    assert st == 405
    st, _, doc = gc.http("GET", g.sim.info["login"] + "/beta/me", headers={"Authorization": "Bearer " + g.tok})
    assert st == 400 and doc["error"]["code"] == "BadRequest"


def test_counters_by_operation(gsim, g):
    g.ok("users/" + A)
    c = gsim.counters()
    assert c["graph_requests"]["users.get"] >= 1 and c["graph_requests"]["calendarView"] >= 1
    assert c["graph_errors"]["404 MailboxNotEnabledForRESTAPI"] >= 1
