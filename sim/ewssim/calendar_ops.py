"""Calendar EWS operations: FindItem (with and without CalendarView), GetItem, SyncFolderItems,
GetFolder and GetUserAvailability, plus the calendar part of the control API.

Responses use Exchange 2019's element names, order (schema order, not request order) and
namespaces; instants are written in UTC with "Z" as Exchange does for RequestServerVersion
Exchange2010 and later. Request times without an offset are read in the TimeZoneContext
zone, else UTC. Which Exchange behaviour each piece imitates is said where it is done.
"""

import base64
import math
from datetime import date, datetime, timedelta
from urllib.parse import unquote
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree

from . import calendar as calmod
from . import registry, soap
from .calendar import UTC, iso
from .soap import EwsFault, M, MessageError, T, child, el, local, text_of
from .webio import bad, not_found, read_json, sim_of

ACCESS_DENIED = "Access is denied. Check credentials and try again., Cannot get ID from name."
ITEM_NOT_FOUND = "The specified object was not found in the store., The process failed to get the correct properties."
ID_MALFORMED = "Id is malformed."

# The operations this module answers; main adds them to the server's table.
OPERATIONS = registry.Table()

# Distinguished folders ews-sim answers for: (display name, folder class, element).
FOLDERS = {
    "calendar": ("Calendar", "IPF.Appointment", "CalendarFolder"),
    "deleteditems": ("Deleted Items", "IPF.Note", "Folder"),
    "inbox": ("Inbox", "IPF.Note", "Folder"),
    "msgfolderroot": ("Top of Information Store", None, "Folder"),
    "root": ("", None, "Folder"),
}
FOLDER_PARENT = {"calendar": "msgfolderroot", "deleteditems": "msgfolderroot", "inbox": "msgfolderroot",
                 "msgfolderroot": "root", "root": None}
MSGFOLDERROOT_CHILDREN = 14  # a fresh Exchange 2019 mailbox's Top of Information Store


# ---------------------------------------------------------------------------------------
# Request helpers
# ---------------------------------------------------------------------------------------


def request_zone(ctx):
    """The zone offset-less request times are read in: TimeZoneContext, else UTC."""
    if not ctx.tz_id:
        return None
    try:
        return calmod.WindowsZone(ctx.tz_id)
    except KeyError:
        raise EwsFault("ErrorTimeZone", "The time zone '%s' specified in TimeZoneContext is invalid." % ctx.tz_id)


def _dt(text, zone, what):
    try:
        return calmod.parse_dt(text, zone)
    except (ValueError, TypeError):
        raise EwsFault("ErrorSchemaValidation", "The value of %s is not a valid xs:dateTime: %r" % (what, text))


def target_mailbox(ctx, address):
    """The mailbox a t:Mailbox element (delegate access) names. The service account has no
    folder rights on other mailboxes, so Exchange answers ErrorAccessDenied; an address
    without a mailbox gives ErrorNonExistentMailbox."""
    if address is None:
        return ctx.mailbox
    mb, _err = ctx.sim.mailbox_by_any(address, "SmtpAddress")
    if mb is None:
        raise MessageError("ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.")
    if mb is not ctx.mailbox:
        raise MessageError("ErrorAccessDenied", ACCESS_DENIED)
    return mb


def resolve_folder(ctx, fel):
    """(mailbox, distinguished name) of a t:DistinguishedFolderId / t:FolderId element."""
    name = local(fel.tag)
    if name == "DistinguishedFolderId":
        mbel = child(fel, "Mailbox")
        addr = text_of(mbel, "EmailAddress") if mbel is not None else None
        mb = target_mailbox(ctx, addr)
        return mb, fel.get("Id")
    if name == "FolderId":
        fid = fel.get("Id", "")
        for n in FOLDERS:
            if calmod.folder_id(ctx.mailbox, n)[0] == fid:
                return ctx.mailbox, n
        try:
            base64.b64decode(fid, validate=True)
        except Exception:
            raise MessageError("ErrorInvalidIdMalformed", ID_MALFORMED)
        raise MessageError("ErrorFolderNotFound", "The specified folder could not be found in the store.")
    raise MessageError("ErrorInvalidRequest", "Unsupported folder id element %s." % name)


def folder_children(container):
    return [c for c in container if isinstance(c.tag, str)]


class Shape:
    """An ItemShape / FolderShape: base shape plus additional property names."""

    def __init__(self, el_shape):
        self.base = text_of(el_shape, "BaseShape", "IdOnly") if el_shape is not None else "IdOnly"
        self.body_type = text_of(el_shape, "BodyType", "Best") if el_shape is not None else "Best"
        self.fields = set()
        self.extended = []  # (tag int, type, original PropertyTag text)
        ap = child(el_shape, "AdditionalProperties") if el_shape is not None else None
        if ap is not None:
            for f in ap:
                if not isinstance(f.tag, str):
                    continue
                ln = local(f.tag)
                if ln == "FieldURI":
                    uri = f.get("FieldURI", "")
                    self.fields.add(uri.split(":", 1)[-1])
                elif ln == "ExtendedFieldURI":
                    tag = f.get("PropertyTag")
                    if tag:
                        try:
                            n = int(tag, 16) if tag.lower().startswith("0x") else int(tag)
                        except ValueError:
                            raise MessageError("ErrorInvalidExtendedProperty", "The extended property tag is invalid.")
                        self.extended.append((n, f.get("PropertyType", ""), tag))


# ---------------------------------------------------------------------------------------
# Calendar item rendering
# ---------------------------------------------------------------------------------------

# t:CalendarItem children ews-sim can produce, in the schema order of ItemType followed by
# CalendarItemType (types.xsd); responses list them in this order whatever the request order.
ORDER = [
    "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body", "DateTimeReceived", "Size",
    "Categories", "Importance", "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "DateTimeSent",
    "DateTimeCreated", "ReminderDueBy", "ReminderIsSet", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo",
    "HasAttachments", "Culture", "EffectiveRights", "LastModifiedName", "LastModifiedTime", "IsAssociated",
    "UID", "RecurrenceId", "DateTimeStamp", "Start", "End", "OriginalStart", "IsAllDayEvent",
    "LegacyFreeBusyStatus", "Location", "IsMeeting", "IsCancelled", "IsRecurring", "MeetingRequestWasSent",
    "IsResponseRequested", "CalendarItemType", "MyResponseType", "Organizer", "Duration", "TimeZone",
    "AppointmentSequenceNumber", "AppointmentState", "Recurrence", "FirstOccurrence", "LastOccurrence",
    "ModifiedOccurrences", "DeletedOccurrences", "StartTimeZone", "EndTimeZone", "ConferenceType",
    "AllowNewTimeProposal", "IsOnlineMeeting",
]
SUPPORTED = set(ORDER)
# Properties FindItem cannot return: Exchange answers ErrorInvalidPropertyRequest.
NOT_IN_FIND = {"Body", "MimeContent", "Attachments", "UniqueBody", "NormalizedBody", "TextBody"}
# Master-only structure (the series) that a FindItem/AllProperties listing leaves out.
SERIES_PROPS = {"Recurrence", "FirstOccurrence", "LastOccurrence", "ModifiedOccurrences", "DeletedOccurrences"}
# What ews-sim returns for BaseShape Default (close to Exchange's default calendar shape:
# the item basics plus the calendar times, status and type, without the iCalendar and
# series properties).
DEFAULT = set(ORDER) - {"UID", "RecurrenceId", "DateTimeStamp", "OriginalStart", "Categories", "EffectiveRights",
                        "StartTimeZone", "EndTimeZone"} - SERIES_PROPS


def wanted_props(shape, find):
    if shape.base == "AllProperties":
        props = set(ORDER)
        if find:
            props -= SERIES_PROPS
    elif shape.base == "Default":
        props = set(DEFAULT)
    else:
        props = {"ItemId"}
    if find:
        props.discard("Body")
        refused = shape.fields & NOT_IN_FIND
        if refused:
            raise MessageError("ErrorInvalidPropertyRequest",
                               "The property %s can't be used in FindItem requests." % sorted(refused)[0])
    props |= shape.fields & SUPPORTED
    return props


def _date_with_offset(d, tz):
    """An xs:date for a recurrence range, with the item zone's offset at that date as
    Exchange writes it (2025-03-03+01:00; Z for UTC)."""
    off = calmod.zone(tz).utcoffset(datetime.combine(d, datetime.min.time()))
    mins = int(off.total_seconds() // 60)
    if mins == 0:
        return d.isoformat() + "Z"
    sign = "+" if mins > 0 else "-"
    mins = abs(mins)
    return "%s%s%02d:%02d" % (d.isoformat(), sign, mins // 60, mins % 60)


def _html_body(text):
    return ("<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n"
            "</head>\r\n<body>\r\n<div>%s</div>\r\n</body>\r\n</html>\r\n" % escape(text))


def _occurrence_info(parent, tag, v):
    o = el(parent, T(tag))
    el(o, T("ItemId"), Id=v.id, ChangeKey=v.change_key)
    el(o, T("Start"), iso(v.start))
    el(o, T("End"), iso(v.end))
    el(o, T("OriginalStart"), iso(v.orig))


def _first_last(item):
    """FirstOccurrence / LastOccurrence views (deleted instances skipped; LastOccurrence
    None for NoEnd series)."""
    cal = item.cal
    first = last = None
    bounded = item.rec.count is not None or item.rec.until is not None
    for i, s, e in item.series(limit=20000 if bounded else 1000):
        if s in item.deleted:
            continue
        v = cal.instance_view(item, orig=s) if s in item.exceptions else calmod.View(item, "Occurrence", i, s, None,
                                                                                        s, e)
        if first is None:
            first = v
            if not bounded:
                break
        last = v
    return first, (last if bounded else None)


def render_item(parent, v, ctx, props, body_type="Best"):
    """Append a t:CalendarItem for view v with the properties in props, in schema order."""
    it = v.item
    ci = el(parent, T("CalendarItem"))
    mb = it.cal.mailbox
    instance = v.is_instance
    for name in ORDER:
        if name not in props:
            continue
        if name == "ItemId":
            el(ci, T("ItemId"), Id=v.id, ChangeKey=v.change_key)
        elif name == "ParentFolderId":
            fid, fck = calmod.folder_id(mb, it.folder)
            el(ci, T("ParentFolderId"), Id=fid, ChangeKey=fck)
        elif name == "ItemClass":
            # Exceptions are embedded messages of the master with this OLE class.
            el(ci, T("ItemClass"), calmod.EXCEPTION_CLASS if v.kind == "Exception" else "IPM.Appointment")
        elif name == "Subject":
            el(ci, T("Subject"), v.subject)
        elif name == "Sensitivity":
            el(ci, T("Sensitivity"), v.sensitivity)
        elif name == "Body":
            text = it.body or ""
            if body_type == "Text":
                el(ci, T("Body"), text, BodyType="Text", IsTruncated="false")
            else:
                el(ci, T("Body"), _html_body(text) if text else "", BodyType="HTML", IsTruncated="false")
        elif name == "DateTimeReceived":
            el(ci, T("DateTimeReceived"), iso(it.created))
        elif name == "Size":
            el(ci, T("Size"), 2700 + 2 * len(v.subject.encode("utf-8")) + len((it.body or "").encode("utf-8")))
        elif name == "Categories":
            if it.categories:
                c = el(ci, T("Categories"))
                for s in it.categories:
                    el(c, T("String"), s)
        elif name == "Importance":
            el(ci, T("Importance"), "Normal")
        elif name in ("IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "HasAttachments",
                      "IsAssociated"):
            el(ci, T(name), False)
        elif name == "DateTimeSent":
            el(ci, T("DateTimeSent"), iso(it.created))
        elif name == "DateTimeCreated":
            el(ci, T("DateTimeCreated"), iso(it.created))
        elif name == "ReminderDueBy":
            el(ci, T("ReminderDueBy"), iso(v.start))
        elif name == "ReminderIsSet":
            el(ci, T("ReminderIsSet"), it.reminder is not None)
        elif name == "ReminderMinutesBeforeStart":
            el(ci, T("ReminderMinutesBeforeStart"), it.reminder if it.reminder is not None else 0)
        elif name in ("DisplayCc", "DisplayTo"):
            el(ci, T(name), "")
        elif name == "Culture":
            el(ci, T("Culture"), "en-US")
        elif name == "EffectiveRights":
            er = el(ci, T("EffectiveRights"))
            for r, val in (("CreateAssociated", False), ("CreateContents", False), ("CreateHierarchy", False),
                           ("Delete", True), ("Modify", True), ("Read", True), ("ViewPrivateItems", True)):
                el(er, T(r), val)
        elif name == "LastModifiedName":
            el(ci, T("LastModifiedName"), mb.display_name)
        elif name == "LastModifiedTime":
            el(ci, T("LastModifiedTime"), iso(v.modified))
        elif name == "UID":
            el(ci, T("UID"), it.uid)
        elif name == "RecurrenceId":
            if instance:
                el(ci, T("RecurrenceId"), iso(v.orig))
        elif name == "DateTimeStamp":
            el(ci, T("DateTimeStamp"), iso(it.created))
        elif name == "Start":
            el(ci, T("Start"), iso(v.start))
        elif name == "End":
            el(ci, T("End"), iso(v.end))
        elif name == "OriginalStart":
            if instance:
                el(ci, T("OriginalStart"), iso(v.orig))
        elif name == "IsAllDayEvent":
            el(ci, T("IsAllDayEvent"), it.all_day)
        elif name == "LegacyFreeBusyStatus":
            el(ci, T("LegacyFreeBusyStatus"), v.status)
        elif name == "Location":
            if v.location is not None:
                el(ci, T("Location"), v.location)
        elif name == "IsMeeting":
            el(ci, T("IsMeeting"), it.is_meeting)
        elif name == "IsCancelled":
            el(ci, T("IsCancelled"), bool(v.cancelled))
        elif name == "IsRecurring":
            # Real Exchange quirk: IsRecurring is true for occurrences and exceptions but
            # false for the recurring master itself; use CalendarItemType to tell.
            el(ci, T("IsRecurring"), instance)
        elif name == "MeetingRequestWasSent":
            el(ci, T("MeetingRequestWasSent"), it.is_meeting and it.organizer is None)
        elif name == "IsResponseRequested":
            if it.is_meeting:
                el(ci, T("IsResponseRequested"), True)
        elif name == "CalendarItemType":
            el(ci, T("CalendarItemType"), v.kind)
        elif name == "MyResponseType":
            el(ci, T("MyResponseType"), it.response)
        elif name == "Organizer":
            oname, omail = it.organizer_mailbox()
            o = el(ci, T("Organizer"))
            m = el(o, T("Mailbox"))
            el(m, T("Name"), oname)
            el(m, T("EmailAddress"), omail)
            el(m, T("RoutingType"), "SMTP")
        elif name == "Duration":
            el(ci, T("Duration"), calmod.xs_duration(v.end - v.start))
        elif name == "TimeZone":
            el(ci, T("TimeZone"), calmod.zone_name(it.tz))
        elif name == "AppointmentSequenceNumber":
            el(ci, T("AppointmentSequenceNumber"), it.seq)
        elif name == "AppointmentState":
            # Bit 0 meeting, bit 1 received (someone else organizes), bit 2 cancelled.
            st = (1 if it.is_meeting else 0) | (2 if it.organizer else 0) | (4 if v.cancelled else 0)
            el(ci, T("AppointmentState"), st)
        elif name in SERIES_PROPS:
            if v.kind != "RecurringMaster":
                continue
            if name == "Recurrence":
                _render_recurrence(ci, it)
            elif name in ("FirstOccurrence", "LastOccurrence"):
                first, last = _first_last(it)
                target = first if name == "FirstOccurrence" else last
                if target is not None:
                    _occurrence_info(ci, name, target)
            elif name == "ModifiedOccurrences":
                if it.exceptions:
                    mo = el(ci, T("ModifiedOccurrences"))
                    for ex in sorted(it.exceptions.values(), key=lambda x: x.orig):
                        _occurrence_info(mo, "Occurrence", calmod.View(it, "Exception", ex.index, ex.orig, ex))
            elif name == "DeletedOccurrences":
                if it.deleted:
                    do = el(ci, T("DeletedOccurrences"))
                    for orig in sorted(it.deleted):
                        d = el(do, T("DeletedOccurrence"))
                        el(d, T("Start"), iso(orig))
        elif name in ("StartTimeZone", "EndTimeZone"):
            # The full definition, as Exchange 2010+ returns it; clients mostly need @Id.
            tz_definition(ci, T(name), it.tz)
        elif name == "ConferenceType":
            el(ci, T("ConferenceType"), 0)
        elif name == "AllowNewTimeProposal":
            el(ci, T("AllowNewTimeProposal"), True)
        elif name == "IsOnlineMeeting":
            el(ci, T("IsOnlineMeeting"), False)
    return ci


def _bias(minutes):
    """A Period/@Bias: UTC minus local time as xs:duration, the way Exchange writes it
    (-PT1H for UTC+01:00, PT0H for UTC)."""
    if minutes == 0:
        return "PT0H"
    return calmod.xs_duration(timedelta(minutes=minutes))


def tz_definition(parent, tag, tz_id, full=True):
    """A t:TimeZoneDefinitionType element (Periods, TransitionsGroups, Transitions) for a
    Windows zone, with one recurring rule group as Exchange writes current rules."""
    d = el(parent, tag, Id=tz_id, Name=calmod.zone_name(tz_id))
    if not full:
        return d
    r = calmod.zone_rules(tz_id)
    std_id = "trule:Microsoft/Registry/%s/2025-Standard" % tz_id
    dst_id = "trule:Microsoft/Registry/%s/2025-Daylight" % tz_id
    periods = el(d, T("Periods"))
    el(periods, T("Period"), Bias=_bias(-r["std"]), Name="Standard", Id=std_id)
    if r["dst"] is not None:
        el(periods, T("Period"), Bias=_bias(-r["dst"]), Name="Daylight", Id=dst_id)
    groups = el(d, T("TransitionsGroups"))
    g = el(groups, T("TransitionsGroup"), Id="0")
    if r["dst"] is None:
        tr = el(g, T("Transition"))
        el(tr, T("To"), std_id, Kind="Period")
    else:
        for key, target in (("to_dst", dst_id), ("to_std", std_id)):
            month, dow, occ, wall = r[key]
            hh, mm, ss = (int(x) for x in wall.split(":"))
            tr = el(g, T("RecurringDayTransition"))
            el(tr, T("To"), target, Kind="Period")
            el(tr, T("TimeOffset"), calmod.xs_duration(timedelta(hours=hh, minutes=mm, seconds=ss)))
            el(tr, T("Month"), month)
            el(tr, T("DayOfWeek"), dow)
            el(tr, T("Occurrence"), occ)
    trs = el(d, T("Transitions"))
    tr = el(trs, T("Transition"))
    el(tr, T("To"), "0", Kind="Group")
    return d


@OPERATIONS.operation("GetServerTimeZones")
async def get_server_time_zones(ctx, op):
    """The zones the server knows (all, or the requested Ids), with or without the rules."""
    root, msgs = soap.response_root("GetServerTimeZones")
    full = op.get("ReturnFullTimeZoneData", "true").lower() in ("true", "1")
    ids_el = child(op, "Ids")
    if ids_el is not None:
        ids = [(e.text or "").strip() for e in ids_el if isinstance(e.tag, str)]
        unknown = [i for i in ids if not calmod.known_zone(i)]
        if unknown:
            m = soap.error_message(msgs, "GetServerTimeZonesResponseMessage", "ErrorTimeZone",
                                   "The time zone '%s' is not valid." % unknown[0])
            el(m, M("TimeZoneDefinitions"))  # required by the schema, also on errors
            return root
    else:
        ids = list(calmod.ZONES) + sorted(set(calmod._WIN_TZ) - set(calmod.ZONES))
    m = soap.success_message(msgs, "GetServerTimeZonesResponseMessage")
    defs = el(m, M("TimeZoneDefinitions"))
    for i in ids:
        tz_definition(defs, T("TimeZoneDefinition"), i, full)
    return root


def _render_recurrence(parent, it):
    rec = it.rec
    r = el(parent, T("Recurrence"))
    if rec.pattern == "daily":
        p = el(r, T("DailyRecurrence"))
        el(p, T("Interval"), rec.interval)
    else:
        p = el(r, T("WeeklyRecurrence"))
        el(p, T("Interval"), rec.interval)
        el(p, T("DaysOfWeek"), " ".join(calmod.WEEKDAYS[d] for d in rec.days))
        el(p, T("FirstDayOfWeek"), calmod.WEEKDAYS[rec.first_day])
    sd = calmod.utc_to_local(it.start, it.tz).date()
    if rec.count:
        rg = el(r, T("NumberedRecurrence"))
        el(rg, T("StartDate"), _date_with_offset(sd, it.tz))
        el(rg, T("NumberOfOccurrences"), rec.count)
    elif rec.until:
        rg = el(r, T("EndDateRecurrence"))
        el(rg, T("StartDate"), _date_with_offset(sd, it.tz))
        el(rg, T("EndDate"), _date_with_offset(rec.until, it.tz))
    else:
        rg = el(r, T("NoEndRecurrence"))
        el(rg, T("StartDate"), _date_with_offset(sd, it.tz))


# ---------------------------------------------------------------------------------------
# FindItem
# ---------------------------------------------------------------------------------------


def _add_years(dt, n):
    try:
        return dt.replace(year=dt.year + n)
    except ValueError:  # 29 February
        return dt.replace(year=dt.year + n, day=28)


@OPERATIONS.operation("FindItem")
async def find_item(ctx, op):
    zone = request_zone(ctx)
    root, msgs = soap.response_root("FindItem")
    shape = Shape(child(op, "ItemShape"))
    parents = child(op, "ParentFolderIds")
    for fel in folder_children(parents):
        try:
            _find_in_folder(ctx, op, fel, shape, zone, msgs)
        except MessageError as exc:
            soap.message_from_error(msgs, "FindItemResponseMessage", exc)
    return root


def _find_limit(ctx):
    lim = ctx.sim.limits.ews_find_count_limit
    return lim if lim else None


def _max_entries(view_el):
    """MaxEntriesReturned of a paging element; below 1 is ErrorInvalidPagingMaxRows."""
    mx = view_el.get("MaxEntriesReturned")
    if mx is None:
        return None
    mx = int(mx)
    if mx < 1:
        raise MessageError("ErrorInvalidPagingMaxRows", "The MaxEntriesReturned value must be greater than zero.")
    return mx


def _find_in_folder(ctx, op, fel, shape, zone, msgs):
    mb, name = resolve_folder(ctx, fel)
    props = wanted_props(shape, find=True)
    cv = child(op, "CalendarView")
    traversal = op.get("Traversal", "Shallow")
    if cv is not None:
        if name != "calendar":
            raise MessageError("ErrorCalendarFolderIsInvalidForCalendarView",
                               "CalendarView can only be used with calendar folders.")
        if child(op, "Restriction") is not None or child(op, "SortOrder") is not None:
            raise MessageError("ErrorInvalidRestriction",
                               "Restrictions and sort order may not be specified for a CalendarView.")
        lo = _dt(cv.get("StartDate"), zone, "StartDate")
        hi = _dt(cv.get("EndDate"), zone, "EndDate")
        if hi < lo:
            raise MessageError("ErrorCalendarEndDateIsEarlierThanStartDate",
                               "EndDate is earlier than StartDate")
        if hi > _add_years(lo, 2):
            raise MessageError("ErrorCalendarViewRangeTooBig",
                               "The specified time range for the calendar view is too big: it can span at most "
                               "two years.")
        mx = _max_entries(cv)
        views = mb.calendar.occurrences(lo, hi)
        total = len(views)
        n = total if mx is None else min(total, mx)
        lim = _find_limit(ctx)
        if lim is not None:
            n = min(n, lim)
        m = soap.success_message(msgs, "FindItemResponseMessage")
        rf = el(m, M("RootFolder"), TotalItemsInView=str(total),
                IncludesLastItemInRange="true" if n == total else "false")
        items = el(rf, T("Items"))
        for v in views[:n]:
            render_item(items, v, ctx, props)
        return
    # Without CalendarView: the stored items (singles and recurring masters), unexpanded.
    if name == "calendar" and traversal != "Associated":
        stored = list(mb.calendar.items.values())
    elif name == "deleteditems" and traversal != "Associated":
        stored = list(mb.calendar.trash.values())
    else:
        stored = []
    stored.sort(key=lambda it: (it.start, it.created_seq))
    total = len(stored)
    attrs = {}
    ipv = child(op, "IndexedPageItemView")
    fpv = child(op, "FractionalPageItemView")
    lim = _find_limit(ctx)
    if ipv is not None:
        off = int(ipv.get("Offset", "0"))
        if off < 0:
            raise MessageError("ErrorInvalidIndexedPagingParameters", "Indexed paging parameters are invalid.")
        mx = _max_entries(ipv)
        mx = mx if mx is not None else total
        if lim is not None:
            mx = min(mx, lim)
        if ipv.get("BasePoint", "Beginning") == "End":
            end = max(0, total - off)
            begin = max(0, end - mx)
            page = stored[begin:end]
            attrs["IndexedPagingOffset"] = str(max(0, total - begin))
            last = begin == 0
        else:
            page = stored[off:off + mx]
            attrs["IndexedPagingOffset"] = str(min(total, off + len(page)))
            last = off + len(page) >= total
    elif fpv is not None:
        num = int(fpv.get("Numerator", "0"))
        den = int(fpv.get("Denominator", "1"))
        if den <= 0 or num < 0 or num > den:
            raise MessageError("ErrorInvalidFractionalPagingParameters", "Fractional paging parameters are invalid.")
        off = total * num // den
        mx = _max_entries(fpv)
        mx = mx if mx is not None else total
        page = stored[off:off + mx]
        attrs["NumeratorOffset"] = str(off + len(page))
        attrs["AbsoluteDenominator"] = str(total)
        last = off + len(page) >= total
    else:
        page = stored if lim is None else stored[:lim]
        last = len(page) == total
    m = soap.success_message(msgs, "FindItemResponseMessage")
    rf = el(m, M("RootFolder"))
    for k, v in attrs.items():
        rf.set(k, v)
    rf.set("TotalItemsInView", str(total))
    rf.set("IncludesLastItemInRange", "true" if last else "false")
    items = el(rf, T("Items"))
    for it in page:
        render_item(items, calmod.View(it, it.kind), ctx, props)


# ---------------------------------------------------------------------------------------
# GetItem
# ---------------------------------------------------------------------------------------


def _lookup(ctx, text):
    """View for an EWS id of the acting mailbox, or MessageError."""
    cal = ctx.mailbox.calendar
    try:
        v = cal.resolve(text or "")
    except ValueError:
        raise MessageError("ErrorInvalidIdMalformed", ID_MALFORMED)
    except LookupError:
        raise MessageError("ErrorItemNotFound", ITEM_NOT_FOUND)
    if v is None:
        raise MessageError("ErrorItemNotFound", ITEM_NOT_FOUND)
    return v


def _get_view(ctx, idel):
    kind = local(idel.tag)
    if kind == "ItemId":
        return _lookup(ctx, idel.get("Id"))
    if kind == "OccurrenceItemId":
        master = _lookup(ctx, idel.get("RecurringMasterId"))
        if master.kind != "RecurringMaster":
            raise MessageError("ErrorCalendarCannotUseIdForRecurringMasterId",
                               "The Id of a single calendar item or an occurrence can't be used as a "
                               "RecurringMasterId.")
        idx = int(idel.get("InstanceIndex"))
        try:
            v = master.item.cal.instance_view(master.item, index=idx)
        except LookupError as exc:
            if exc.args and exc.args[0] == "deleted":
                raise MessageError("ErrorCalendarOccurrenceIsDeletedFromRecurrence",
                                   "Occurrence with this index was previously deleted from the recurrence.")
            raise MessageError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
                               "The occurrence index is out of recurrence range.")
        return v
    if kind == "RecurringMasterItemId":
        occ = _lookup(ctx, idel.get("OccurrenceId"))
        if not occ.is_instance:
            raise MessageError("ErrorCalendarCannotUseIdForOccurrenceId",
                               "The Id of a single calendar item or a recurring master can't be used as an "
                               "OccurrenceId.")
        return calmod.View(occ.item, "RecurringMaster")
    raise MessageError("ErrorInvalidIdXml", "Unsupported item id element %s." % kind)


@OPERATIONS.operation("GetItem")
async def get_item(ctx, op):
    request_zone(ctx)
    root, msgs = soap.response_root("GetItem")
    shape = Shape(child(op, "ItemShape"))
    props = wanted_props(shape, find=False)
    ids = child(op, "ItemIds")
    for idel in folder_children(ids):
        try:
            v = _get_view(ctx, idel)
        except MessageError as exc:
            m = soap.message_from_error(msgs, "GetItemResponseMessage", exc)
            el(m, M("Items"))
            continue
        m = soap.success_message(msgs, "GetItemResponseMessage")
        render_item(el(m, M("Items")), v, ctx, props, shape.body_type)
    return root


# ---------------------------------------------------------------------------------------
# SyncFolderItems
# ---------------------------------------------------------------------------------------


@OPERATIONS.operation("SyncFolderItems")
async def sync_folder_items(ctx, op):
    request_zone(ctx)
    root, msgs = soap.response_root("SyncFolderItems")
    try:
        _sync(ctx, op, msgs)
    except MessageError as exc:
        soap.message_from_error(msgs, "SyncFolderItemsResponseMessage", exc)
    return root


def _sync(ctx, op, msgs):
    shape = Shape(child(op, "ItemShape"))
    props = wanted_props(shape, find=True)
    sf = child(op, "SyncFolderId")
    fel = folder_children(sf)[0]
    mb, name = resolve_folder(ctx, fel)
    cal = mb.calendar
    state = text_of(op, "SyncState") or ""
    pos = 0
    if state:
        bad_state = MessageError("ErrorInvalidSyncStateData",
                                 "Synchronization state data is corrupt or otherwise invalid.")
        try:
            pos = calmod.decode_sync_state(mb, name, state)
        except ValueError:
            raise bad_state
        if name == "calendar" and pos > len(cal.log):
            raise bad_state
    max_changes = int(text_of(op, "MaxChangesReturned", "512"))
    ignore = set()
    ig = child(op, "Ignore")
    if ig is not None:
        ignore = {e.get("Id") for e in ig if isinstance(e.tag, str)}
    changes = cal.changes_since(pos) if name == "calendar" else []
    page = []
    new_pos = len(cal.log) if name == "calendar" else 0
    more = False
    for ch in changes:
        if ch[1] in ignore:
            continue
        if len(page) == max_changes:
            # Stop before this change: everything logged before its first change is
            # covered by this page; the rest comes with the next SyncState.
            new_pos = ch[3] - 1
            more = True
            break
        page.append(ch)
    m = soap.success_message(msgs, "SyncFolderItemsResponseMessage")
    el(m, M("SyncState"), calmod.encode_sync_state(mb, name, new_pos))
    el(m, M("IncludesLastItemInRange"), not more)
    chs = el(m, M("Changes"))
    for op_, iid, item, _seq in page:
        if op_ == "delete":
            d = el(chs, T("Delete"))
            el(d, T("ItemId"), Id=iid)
        else:
            c = el(chs, T("Create" if op_ == "create" else "Update"))
            render_item(c, calmod.View(item, item.kind), ctx, props)


# ---------------------------------------------------------------------------------------
# GetFolder
# ---------------------------------------------------------------------------------------

FOLDER_ORDER = ["FolderId", "ParentFolderId", "FolderClass", "DisplayName", "TotalCount", "ChildFolderCount",
                "ExtendedProperty", "EffectiveRights", "UnreadCount"]


@OPERATIONS.operation("GetFolder")
async def get_folder(ctx, op):
    root, msgs = soap.response_root("GetFolder")
    shape = Shape(child(op, "FolderShape"))
    for fel in folder_children(child(op, "FolderIds")):
        try:
            mb, name = resolve_folder(ctx, fel)
            if name not in FOLDERS:
                raise MessageError("ErrorFolderNotFound", "The specified folder could not be found in the store.")
        except MessageError as exc:
            m = soap.message_from_error(msgs, "GetFolderResponseMessage", exc)
            el(m, M("Folders"))
            continue
        m = soap.success_message(msgs, "GetFolderResponseMessage")
        _render_folder(el(m, M("Folders")), mb, name, shape)
    return root


def _render_folder(parent, mb, name, shape):
    display, fclass, elname = FOLDERS[name]
    if shape.base == "AllProperties":
        props = set(FOLDER_ORDER) - {"ExtendedProperty"}
    elif shape.base == "Default":
        props = {"FolderId", "DisplayName", "TotalCount", "ChildFolderCount", "UnreadCount"}
    else:
        props = {"FolderId"}
    props |= shape.fields & set(FOLDER_ORDER)
    if elname == "CalendarFolder":
        props.discard("UnreadCount")  # CalendarFolderType has no UnreadCount
    cal = mb.calendar if name in ("calendar", "deleteditems") else None
    f = el(parent, T(elname))
    for p in FOLDER_ORDER:
        if p not in props and not (p == "ExtendedProperty" and shape.extended):
            continue
        if p == "FolderId":
            fid, fck = calmod.folder_id(mb, name)
            el(f, T("FolderId"), Id=fid, ChangeKey=fck)
        elif p == "ParentFolderId":
            par = FOLDER_PARENT.get(name)
            if par:
                pid, pck = calmod.folder_id(mb, par)
                el(f, T("ParentFolderId"), Id=pid, ChangeKey=pck)
        elif p == "FolderClass":
            if fclass:
                el(f, T("FolderClass"), fclass)
        elif p == "DisplayName":
            el(f, T("DisplayName"), display)
        elif p == "TotalCount":
            n = len(cal.items) if name == "calendar" else len(cal.trash) if name == "deleteditems" else 0
            el(f, T("TotalCount"), n)
        elif p == "ChildFolderCount":
            el(f, T("ChildFolderCount"), MSGFOLDERROOT_CHILDREN if name == "msgfolderroot" else 1 if name == "root"
               else 0)
        elif p == "ExtendedProperty":
            for tag, ptype, _orig in shape.extended:
                val = None
                if name == "calendar" and tag == 0x670A:  # PR_LOCAL_COMMIT_TIME_MAX
                    val = iso(cal.commit_time)
                elif name == "calendar" and tag == 0x670B:  # PR_DELETED_COUNT_TOTAL
                    val = str(cal.deleted_count)
                if val is None:
                    continue  # Exchange omits properties that are not set
                ep = el(f, T("ExtendedProperty"))
                el(ep, T("ExtendedFieldURI"), PropertyTag="0x%x" % tag, PropertyType=ptype)
                el(ep, T("Value"), val)
        elif p == "EffectiveRights":
            er = el(f, T("EffectiveRights"))
            for r in ("CreateAssociated", "CreateContents", "CreateHierarchy", "Delete", "Modify", "Read",
                      "ViewPrivateItems"):
                el(er, T(r), True)
        elif p == "UnreadCount":
            el(f, T("UnreadCount"), 0)


# ---------------------------------------------------------------------------------------
# GetUserAvailability
# ---------------------------------------------------------------------------------------

MAX_MAILBOXES = 100  # per request (ErrorMailboxDataArrayTooBig)
MAX_WINDOW_DAYS = 42  # default availability time window limit (ErrorTimeIntervalTooBig)
FB_DIGIT = {"Free": "0", "Tentative": "1", "Busy": "2", "OOF": "3", "WorkingElsewhere": "4", "NoData": "5"}


def _legacy_zone(tzel):
    def rule(e):
        return (int(text_of(e, "Bias", "0")), text_of(e, "Time", "00:00:00"), int(text_of(e, "DayOrder", "1")),
                int(text_of(e, "Month", "0")), text_of(e, "DayOfWeek", "Sunday"))

    return calmod.LegacyZone(int(text_of(tzel, "Bias", "0")), rule(child(tzel, "StandardTime")),
                             rule(child(tzel, "DaylightTime")))


def _naive(dt, zone):
    return (zone.from_utc(dt) if zone is not None else dt.astimezone(UTC).replace(tzinfo=None)).strftime(
        "%Y-%m-%dT%H:%M:%S")


@OPERATIONS.operation("GetUserAvailabilityRequest")
async def get_user_availability(ctx, op):
    # The request's legacy t:TimeZone decides how naive TimeWindow values are read and how
    # CalendarEvent times are written (local, without offset); without it the
    # TimeZoneContext zone, else UTC.
    tzel = child(op, "TimeZone")
    zone = _legacy_zone(tzel) if tzel is not None else request_zone(ctx)
    mda = child(op, "MailboxDataArray")
    entries = [e for e in mda if isinstance(e.tag, str)] if mda is not None else []
    if not entries:
        raise EwsFault("ErrorMailboxDataArrayEmpty", "MailboxDataArray is empty.")
    if len(entries) > MAX_MAILBOXES:
        raise EwsFault("ErrorMailboxDataArrayTooBig",
                       "Mailbox array size exceeded the maximum allowed of %d." % MAX_MAILBOXES)
    fbo = child(op, "FreeBusyViewOptions")
    if fbo is None:
        raise EwsFault("ErrorInvalidRequest", "ews-sim answers free/busy requests only (no SuggestionsViewOptions).")
    view = text_of(fbo, "RequestedView", "FreeBusy")
    if view == "None":
        raise EwsFault("ErrorInvalidFreeBusyViewType", "The free/busy view type 'None' is not valid in a request.")
    interval = int(text_of(fbo, "MergedFreeBusyIntervalInMinutes", "30"))
    if not 5 <= interval <= 1440:
        raise EwsFault("ErrorInvalidMergedFreeBusyInterval",
                       "MergedFreeBusyIntervalInMinutes must be between 5 and 1440.")
    tw = child(fbo, "TimeWindow")
    lo = _dt(text_of(tw, "StartTime"), zone, "StartTime")
    hi = _dt(text_of(tw, "EndTime"), zone, "EndTime")
    if hi <= lo:
        raise EwsFault("ErrorInvalidTimeInterval", "The time window's EndTime must be after its StartTime.")
    if hi - lo > timedelta(days=MAX_WINDOW_DAYS):
        raise EwsFault("ErrorTimeIntervalTooBig",
                       "The time window is too big; it may span at most %d days." % MAX_WINDOW_DAYS)

    root = el(None, M("GetUserAvailabilityResponse"))
    arr = el(root, M("FreeBusyResponseArray"))
    for e in entries:
        fbr = el(arr, M("FreeBusyResponse"))
        addr = text_of(child(e, "Email"), "Address", "") if child(e, "Email") is not None else ""
        mb, _err = ctx.sim.mailbox_by_any(addr, "SmtpAddress")
        if mb is None:
            _fb_error(fbr, "ErrorMailRecipientNotFound",
                      "Unable to resolve e-mail address <>;SMTP:%s to an Active Directory object." % addr,
                      "Microsoft.Exchange.InfoWorker.Common.Availability.MailRecipientNotFoundException", 5009)
            continue
        cal = mb.calendar
        own = mb is ctx.mailbox
        access = "Reviewer" if own else cal.fb_access
        if access == "None":
            _fb_error(fbr, "ErrorNoFreeBusyAccess",
                      "The requester doesn't have permission to view free/busy information for %s." % mb.smtp,
                      "Microsoft.Exchange.InfoWorker.Common.Availability.NoFreeBusyAccessException", None)
            continue
        # Exchange downgrades the view to what the requester may see: with the default
        # AvailabilityOnly permission, Detailed becomes FreeBusy.
        eff = view
        if access == "AvailabilityOnly":
            eff = {"Detailed": "FreeBusy", "DetailedMerged": "FreeBusyMerged"}.get(view, view)
        rm = el(fbr, M("ResponseMessage"), attrib={"ResponseClass": "Success"})
        el(rm, M("ResponseCode"), "NoError")
        fv = el(fbr, M("FreeBusyView"))
        el(fv, T("FreeBusyViewType"), eff)
        # Free/busy considers appointments overlapping the window (End > StartTime); free
        # and cancelled ones are not published.
        events = [v for v in cal.occurrences(lo, hi, inclusive_start=False)
                  if v.status != "Free" and not v.cancelled]
        if eff in ("MergedOnly", "FreeBusyMerged", "DetailedMerged"):
            n = math.ceil((hi - lo) / timedelta(minutes=interval))
            digits = []
            step = timedelta(minutes=interval)
            for k in range(n):
                a, b = lo + k * step, lo + (k + 1) * step
                best = "0"
                for v in events:
                    if v.start < b and v.end > a:
                        d = FB_DIGIT.get(v.status, "0")
                        if d > best and d != "5":  # highest status wins
                            best = d
                digits.append(best)
            el(fv, T("MergedFreeBusy"), "".join(digits))
        if eff != "MergedOnly":
            cea = el(fv, T("CalendarEventArray"))
            for v in events:
                ce = el(cea, T("CalendarEvent"))
                # An appointment partly inside the window is returned whole.
                el(ce, T("StartTime"), _naive(v.start, zone))
                el(ce, T("EndTime"), _naive(v.end, zone))
                el(ce, T("BusyType"), v.status)
                if eff in ("Detailed", "DetailedMerged"):
                    det = el(ce, T("CalendarEventDetails"))
                    private = v.sensitivity == "Private"
                    if not private:  # private items never show their details
                        el(det, T("ID"), cal.entry_id(v.item.gc, v.item.folder).hex().upper())
                        el(det, T("Subject"), v.subject)
                        if v.location is not None:
                            el(det, T("Location"), v.location)
                    el(det, T("IsMeeting"), v.item.is_meeting)
                    el(det, T("IsRecurring"), v.is_instance)
                    el(det, T("IsException"), v.kind == "Exception")
                    el(det, T("IsReminderSet"), v.item.reminder is not None)
                    el(det, T("IsPrivate"), private)
        _working_hours(fv, cal)
    return root


def _fb_error(fbr, code, text, exc_type, exc_code):
    rm = el(fbr, M("ResponseMessage"), attrib={"ResponseClass": "Error"})
    el(rm, M("MessageText"), text)
    el(rm, M("ResponseCode"), code)
    el(rm, M("DescriptiveLinkKey"), "0")
    mx = el(rm, M("MessageXml"))
    # Exchange writes these in the errors namespace as the default namespace.
    for name, value in (("ExceptionType", exc_type), ("ExceptionCode", exc_code), ("ExceptionServerName", "EXCH01")):
        if value is not None:
            e = etree.SubElement(mx, "{%s}%s" % (soap.NS_E, name), nsmap={None: soap.NS_E})
            e.text = str(value)
    fv = el(fbr, M("FreeBusyView"))
    el(fv, T("FreeBusyViewType"), "None")


def _working_hours(fv, cal):
    bias, std, dst = calmod.legacy_rules(cal.tz)
    wh = el(fv, T("WorkingHours"))
    tz = el(wh, T("TimeZone"))
    el(tz, T("Bias"), bias)
    for tag, (b, t, order, month, dow) in (("StandardTime", std), ("DaylightTime", dst)):
        r = el(tz, T(tag))
        el(r, T("Bias"), b)
        el(r, T("Time"), t)
        el(r, T("DayOrder"), order)
        el(r, T("Month"), month)
        el(r, T("DayOfWeek"), dow)
    wpa = el(wh, T("WorkingPeriodArray"))
    wp = el(wpa, T("WorkingPeriod"))
    el(wp, T("DayOfWeek"), "Monday Tuesday Wednesday Thursday Friday")
    el(wp, T("StartTimeInMinutes"), 480)
    el(wp, T("EndTimeInMinutes"), 1020)


# ---------------------------------------------------------------------------------------
# Control API
# ---------------------------------------------------------------------------------------


def _mailbox(request):
    sim = sim_of(request)
    smtp = unquote(request.match_info["smtp"])
    mb = sim.mailbox(smtp)
    if mb is None:
        raise not_found("no mailbox %s" % smtp)
    return mb


def _item_id(request):
    raw = request.match_info["id"]
    iid = unquote(raw)
    # Accept the URL-safe base64 alphabet too, for convenience in shells.
    if "-" in iid or "_" in iid:
        iid = iid.replace("-", "+").replace("_", "/")
    return iid


def _parse_time(v, key, tz, all_day):
    if not isinstance(v, str):
        raise bad("%s must be an ISO 8601 string" % key)
    if len(v) == 10 and all_day:  # a date for an all-day item: midnight in its zone
        try:
            return date.fromisoformat(v)
        except ValueError:
            raise bad("%s: not a date: %r" % (key, v))
    try:
        s = v.replace("Z", "+00:00").replace("z", "+00:00")
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise bad("%s: not an ISO 8601 date-time: %r" % (key, v))
    if dt.tzinfo is None:
        raise bad("%s: give an offset or Z (%r)" % (key, v))
    return dt.astimezone(UTC)


def _fields(body, item=None):
    """The control API's JSON item fields -> calendar fields (times parsed)."""
    f = dict(body)
    tz = f.get("time_zone", item.tz if item is not None else "UTC")
    all_day = f.get("all_day", item.all_day if item is not None else False)
    for k in ("start", "end"):
        if k in f:
            f[k] = _parse_time(f[k], k, tz, all_day)
    if "status" in f and f["status"] not in calmod.STATUSES[:5]:
        raise bad("status must be one of %s" % ", ".join(calmod.STATUSES[:5]))
    return f


def _value_error(exc):
    return bad(str(exc))


async def ctl_list_items(request):
    mb = _mailbox(request)
    cal = mb.calendar
    folder = request.query.get("folder", "calendar")
    src = cal.trash if folder == "deleteditems" else cal.items
    items = sorted(src.values(), key=lambda it: (it.start, it.created_seq))
    return web.json_response({"mailbox": mb.smtp, "folder": folder, "calendar": cal.describe(),
                              "items": [it.describe() for it in items]})


async def ctl_get_item(request):
    mb = _mailbox(request)
    it = mb.calendar.get(_item_id(request))
    if it is None:
        raise not_found("no item %s in %s" % (request.match_info["id"], mb.smtp))
    return web.json_response(it.describe())


async def ctl_view(request):
    mb = _mailbox(request)
    try:
        lo = calmod.parse_dt(request.query["start"])
        hi = calmod.parse_dt(request.query["end"])
    except KeyError:
        raise bad("view needs ?start=...&end=... (ISO 8601)")
    except ValueError as exc:
        raise bad("view: bad time: %s" % exc)
    if hi < lo:
        raise bad("end is before start")
    views = mb.calendar.occurrences(lo, hi)
    return web.json_response({"mailbox": mb.smtp, "start": iso(lo), "end": iso(hi),
                              "items": [v.describe() for v in views]})


async def ctl_create(request):
    mb = _mailbox(request)
    body = await read_json(request)
    try:
        it = mb.calendar.create(_fields(body))
    except ValueError as exc:
        raise _value_error(exc)
    return web.json_response(it.describe(), status=201)


async def ctl_update(request):
    mb = _mailbox(request)
    cal = mb.calendar
    iid = _item_id(request)
    it = cal.items.get(iid)
    if it is None:
        raise not_found("no item %s in the calendar of %s" % (iid, mb.smtp))
    body = await read_json(request)
    try:
        it = cal.update(iid, _fields(body, it))
    except ValueError as exc:
        raise _value_error(exc)
    return web.json_response(it.describe())


async def ctl_delete(request):
    mb = _mailbox(request)
    cal = mb.calendar
    iid = _item_id(request)
    hard = request.query.get("hard", "0").lower() in ("1", "true", "yes")
    old = cal.get(iid)
    if old is None or (old.folder == "deleteditems" and not hard):
        raise not_found("no item %s in the calendar of %s" % (iid, mb.smtp))
    moved = cal.delete(iid, hard=hard)
    out = {"deleted": True, "hard": hard, "old_id": iid}
    if moved is not None:
        out["item"] = moved.describe()
        out["id"] = moved.id
        out["change_key"] = moved.change_key
        out["folder"] = moved.folder
    return web.json_response(out)


def _occ_args(request):
    mb = _mailbox(request)
    iid = _item_id(request)
    try:
        idx = int(request.match_info["index"])
    except ValueError:
        raise bad("instance index must be an integer")
    it = mb.calendar.items.get(iid)
    if it is None:
        raise not_found("no item %s in the calendar of %s" % (iid, mb.smtp))
    if it.rec is None:
        raise bad("item %s is not a recurring master" % iid)
    return mb, it, idx


async def ctl_occurrence_update(request):
    mb, it, idx = _occ_args(request)
    body = await read_json(request)
    try:
        v = mb.calendar.modify_occurrence(it.id, idx, _fields(body, it))
    except LookupError as exc:
        raise not_found(exc.args[0])
    except ValueError as exc:
        raise _value_error(exc)
    d = v.describe()
    d["master"] = it.describe()
    return web.json_response(d)


async def ctl_occurrence_delete(request):
    mb, it, idx = _occ_args(request)
    try:
        master = mb.calendar.delete_occurrence(it.id, idx)
    except LookupError as exc:
        raise not_found(exc.args[0])
    return web.json_response(master.describe())


async def ctl_calendar(request):
    mb = _mailbox(request)
    return web.json_response(mb.calendar.describe())


async def ctl_regenerate(request):
    mb = _mailbox(request)
    body = await read_json(request)
    seed = body.get("seed")
    if seed is not None and not isinstance(seed, (int, str)):
        raise bad("seed must be an integer or a string")
    n = mb.calendar.regenerate(seed)
    return web.json_response(dict(mb.calendar.describe(), items=n))


async def ctl_clear(request):
    mb = _mailbox(request)
    n = mb.calendar.clear()
    return web.json_response(dict(mb.calendar.describe(), removed=n))


async def ctl_permissions(request):
    mb = _mailbox(request)
    body = await read_json(request)
    v = body.get("default")
    if v not in calmod.FB_ACCESS:
        raise bad("default must be one of %s" % ", ".join(calmod.FB_ACCESS))
    mb.calendar.fb_access = v
    return web.json_response(mb.calendar.describe())


def control_routes(sim):
    """The calendar routes of the control API, for main to add."""
    occ = "/mailboxes/{smtp}/items/{id:.+}/occurrences/{index}"
    return [
        web.get("/mailboxes/{smtp}/calendar", ctl_calendar),
        web.post("/mailboxes/{smtp}/calendar/regenerate", ctl_regenerate),
        web.post("/mailboxes/{smtp}/calendar/clear", ctl_clear),
        web.post("/mailboxes/{smtp}/calendar/permissions", ctl_permissions),
        web.get("/mailboxes/{smtp}/view", ctl_view),
        web.get("/mailboxes/{smtp}/items", ctl_list_items),
        web.post("/mailboxes/{smtp}/items", ctl_create),
        web.patch(occ, ctl_occurrence_update),
        web.delete(occ, ctl_occurrence_delete),
        web.get("/mailboxes/{smtp}/items/{id:.+}", ctl_get_item),
        web.patch("/mailboxes/{smtp}/items/{id:.+}", ctl_update),
        web.delete("/mailboxes/{smtp}/items/{id:.+}", ctl_delete),
    ]
