"""Everything the Graph simulator serves checked against Microsoft Graph's v1.0 CSDL
(data/graph-schema/v1.0-metadata.xml, a copy of ../shared/graph-schema): every property of an event, user,
subscription, change notification (and lifecycle notification), dateTimeTimeZone,
location, recipient/emailAddress, patternedRecurrence, responseStatus and error body
exists on its type (base types included) and has that type: enum members, primitive
kinds, collections, complex types recursively, and non-nullable properties never null."""

import os
import re
from datetime import date, datetime

import pytest
from lxml import etree

import graphclient as gc
from graphclient import A, B, Receiver, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Open types whose dynamic properties Graph documents: innerError's date/request-id/
# client-request-id, and resourceData's id.
OPEN = {"publicInnerError", "resourceData"}


def csdl_path():
    for p in (os.path.join(ROOT, "data", "graph-schema", "v1.0-metadata.xml"),):
        if os.path.exists(p):
            return p
    pytest.fail("the Graph CSDL (data/graph-schema/v1.0-metadata.xml) is missing")


class Csdl:
    def __init__(self, path):
        doc = etree.parse(path, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
        schema = doc.find(".//%sSchema[@Namespace='microsoft.graph']" % EDM)
        self.types = {}
        for el in schema:
            if el.tag in (EDM + "EntityType", EDM + "ComplexType", EDM + "EnumType"):
                self.types[el.get("Name")] = el
        self.checked = set()  # "type.property" seen

    @staticmethod
    def local(t):
        return t.split(".", 1)[1] if t.startswith(("graph.", "microsoft.graph.")) else t

    def props(self, name):
        out = {}
        el = self.types[name]
        while el is not None:
            for p in el.findall(EDM + "Property"):
                out.setdefault(p.get("Name"), (p.get("Type"), p.get("Nullable", "true") == "true"))
            base = el.get("BaseType")
            el = self.types[self.local(base)] if base else None
        return out

    def check(self, obj, name, path=""):
        assert isinstance(obj, dict), "%s: %r is not an object (%s)" % (path, obj, name)
        props = self.props(name)
        for k, v in obj.items():
            if k.startswith("@") or "@odata." in k:
                continue  # instance annotations
            if k not in props:
                assert name in OPEN, "%s.%s: no property %r on graph.%s" % (path, k, k, name)
                continue
            t, nullable = props[k]
            self.checked.add("%s.%s" % (name, k))
            self.value(v, t, nullable, "%s.%s" % (path, k))

    def value(self, v, t, nullable, path):
        if v is None:
            assert nullable, "%s is null but not Nullable (%s)" % (path, t)
            return
        if t.startswith("Collection("):
            assert isinstance(v, list), "%s: expected a list for %s" % (path, t)
            for i, x in enumerate(v):
                self.value(x, t[len("Collection("):-1], False, "%s[%d]" % (path, i))
            return
        if t == "Edm.String":
            assert isinstance(v, str), "%s: %r is not a string" % (path, v)
        elif t == "Edm.Boolean":
            assert isinstance(v, bool), "%s: %r is not a boolean" % (path, v)
        elif t in ("Edm.Int32", "Edm.Int64"):
            assert isinstance(v, int) and not isinstance(v, bool), "%s: %r is not an integer" % (path, v)
        elif t == "Edm.Guid":
            assert isinstance(v, str) and GUID.match(v), "%s: %r is not a GUID" % (path, v)
        elif t == "Edm.DateTimeOffset":
            assert isinstance(v, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?(Z|[+-]\d\d:\d\d)$",
                                                   v), "%s: %r is not a DateTimeOffset" % (path, v)
            datetime.fromisoformat(re.sub(r"(\.\d{6})\d", r"\1", v).replace("Z", "+00:00"))
        elif t == "Edm.Date":
            assert isinstance(v, str) and date.fromisoformat(v), "%s: %r is not a Date" % (path, v)
        else:
            name = self.local(t)
            el = self.types.get(name)
            assert el is not None, "%s: type %s is not in the CSDL" % (path, t)
            if el.tag == EDM + "EnumType":
                members = {m.get("Name") for m in el.findall(EDM + "Member")}
                assert v in members, "%s: %r is not a member of %s %s" % (path, v, t, sorted(members))
            else:
                self.check(v, name, path)


@pytest.fixture(scope="module")
def csdl():
    return Csdl(csdl_path())


@pytest.fixture(scope="module")
def served(module_sim_factory):
    """Samples of everything the simulator serves, from one run."""
    s = gc.graph_sim(module_sim_factory, "--graph-notify-allow-http", "--time-scale", "60")
    g = gc.Graph(s)
    rx, life = Receiver(), Receiver()
    out = {"event": [], "user": [], "subscription": [], "changeNotification": [], "publicErrorResponse": []}
    try:
        gc.create_item(s, A, subject="all day", all_day=True, start="2030-01-08", end="2030-01-09",
                       status="OOF", sensitivity="Confidential", categories=["Kunde"], location="Room 1")
        gc.create_item(s, A, subject="weekly", recurrence={"pattern": "weekly", "days": ["Monday"], "until":
                                                           "2030-03-01"}, start="2030-01-07T09:00:00Z",
                       end="2030-01-07T10:00:00Z")
        for zone in (None, "Pacific Standard Time", "Asia/Kolkata"):
            h = {"Prefer": 'outlook.timezone="%s"' % zone} if zone else None
            out["event"] += g.all_pages("users/%s/calendarView?%s" % (A, gc.WINDOW), headers=h)[0]
        out["event"] += g.all_pages("users/%s/events" % A)[0]
        d = g.ok("users/%s/calendarView/delta?%s" % (A, gc.WINDOW))
        while "@odata.nextLink" in d:
            d = g.ok(d["@odata.nextLink"])
            out["event"] += d["value"]
        out["user"] += [g.ok("users/" + A), g.ok("users/" + gc.ONPREM)]
        st, _, sub = g.call("POST", "subscriptions", body={
            "changeType": "created,updated,deleted", "notificationUrl": rx.url(), "clientState": "c",
            "lifecycleNotificationUrl": life.url(), "resource": "users/%s/events" % B,
            "expirationDateTime": gc.iso_in(3600, gc.sim_now(s))})
        assert st == 201, sub
        out["subscription"] += [sub] + g.ok("subscriptions")["value"]
        it = gc.create_item(s, B)
        s.control("DELETE", gc.item_path(B, it["id"]), expect=200)
        wait_for(lambda: len(rx.notifications()) == 3, what="created, updated, deleted")
        s.control("POST", "/graph/subscriptions/%s/lifecycle" % sub["id"], {"event": "missed"}, expect=200)
        wait_for(lambda: life.notifications(), what="missed")
        out["changeNotificationCollection"] = [p["body"] for p in rx.posts + life.posts]
        for path in ("users/nobody@contoso.example", "users/%s/calendarView" % A, "me", "users/%s/events/x" % A,
                     "users/%s/calendarView/delta?$deltatoken=x" % A):
            out["publicErrorResponse"].append(g.get(path)[2])
        out["publicErrorResponse"].append(g.get("users/" + A, tok="x")[2])
        out["publicErrorResponse"].append(g.call("POST", "$batch", body={"requests": []})[2])
        return out
    finally:
        rx.stop()
        life.stop()


@pytest.mark.parametrize("kind", ["event", "user", "subscription", "changeNotificationCollection",
                                  "publicErrorResponse"])
def test_served_json_matches_the_csdl(csdl, served, kind):
    assert served[kind], kind
    for i, doc in enumerate(served[kind]):
        csdl.check(doc, kind, "%s[%d]" % (kind, i))


def test_the_check_covers_what_calsync_reads(csdl, served):
    for kind in ("event", "user", "subscription", "changeNotificationCollection", "publicErrorResponse"):
        for doc in served[kind]:
            csdl.check(doc, kind)
    need = {"event." + p for p in ("id", "iCalUId", "changeKey", "subject", "start", "end", "isAllDay", "isCancelled",
                                   "showAs", "sensitivity", "categories", "location", "organizer", "type",
                                   "seriesMasterId", "lastModifiedDateTime", "recurrence", "responseStatus")}
    need |= {"dateTimeTimeZone.dateTime", "dateTimeTimeZone.timeZone", "location.displayName",
             "recipient.emailAddress", "emailAddress.address", "emailAddress.name", "recurrencePattern.type",
             "recurrenceRange.type", "recurrencePattern.daysOfWeek", "recurrenceRange.endDate",
             "changeNotification.subscriptionId", "changeNotification.changeType", "changeNotification.resource",
             "changeNotification.resourceData", "changeNotification.clientState", "changeNotification.tenantId",
             "changeNotification.subscriptionExpirationDateTime", "changeNotification.lifecycleEvent",
             "subscription.expirationDateTime", "subscription.notificationUrl", "subscription.resource",
             "publicError.code", "publicError.message", "publicError.innerError", "user.userPrincipalName",
             "user.mail", "user.displayName", "user.id"}
    assert need <= csdl.checked, sorted(need - csdl.checked)
    types = {e["type"] for e in served["event"] if "type" in e}
    assert types == {"singleInstance", "occurrence", "exception", "seriesMaster"}
    assert {e.get("showAs") for e in served["event"]} >= {"free", "busy", "oof", "tentative"}


def test_the_checker_catches_mistakes(csdl):
    good = {"dateTime": "2030-01-01T00:00:00.0000000", "timeZone": "UTC"}
    csdl.check(good, "dateTimeTimeZone")
    for bad in ({"dateTime": None}, {"datetime": "x"}, {"dateTime": 5}):
        with pytest.raises(AssertionError):
            csdl.check(bad, "dateTimeTimeZone")
    with pytest.raises(AssertionError):
        csdl.check({"showAs": "away"}, "event")
    with pytest.raises(AssertionError):
        csdl.check({"categories": "Kunde"}, "event")
    with pytest.raises(AssertionError):
        csdl.check({"subscriptionId": "not-a-guid"}, "changeNotification")
    with pytest.raises(AssertionError):
        csdl.check({"organizer": {"emailAddress": {"smtp": "x"}}}, "event")
    csdl.check({"error": {"code": "x", "message": "y", "innerError": {"request-id": "z"}}}, "publicErrorResponse")
