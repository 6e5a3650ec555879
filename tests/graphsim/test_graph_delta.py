"""calendarView/delta: a round of pages ending in a deltaLink, incremental rounds with
changed occurrences and @removed entries, and the 410 SyncStateNotFound answers for sync
states Exchange Online no longer has."""

import urllib.parse

import pytest

import graphclient as gc
from graphclient import A, B, C

Q = "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z"


@pytest.fixture
def dsim(sim_factory):
    s = gc.graph_sim(sim_factory)
    # An empty calendar for B with known contents in the window.
    s.control("POST", "/mailboxes/%s/calendar/clear" % B, expect=200)
    return s


def rnd(g, link):
    """One round: follow nextLinks to the deltaLink. Returns (entries, deltaLink, pages)."""
    entries, pages = [], 0
    doc = g.ok(link)
    while True:
        pages += 1
        entries += doc["value"]
        if "@odata.deltaLink" in doc:
            assert "@odata.nextLink" not in doc
            return entries, doc["@odata.deltaLink"], pages
        doc = g.ok(doc["@odata.nextLink"])


def first(mailbox=B, q=Q):
    return "users/%s/calendarView/delta?%s" % (mailbox, q)


def test_initial_round_matches_calendar_view(dsim):
    g = gc.Graph(dsim)
    made = [gc.create_item(dsim, B, subject="e%d" % i, start="2030-01-%02dT09:00:00Z" % (i + 1),
                           end="2030-01-%02dT10:00:00Z" % (i + 1)) for i in range(12)]
    st, h, doc = g.get(first())
    assert st == 200 and doc["value"] == [] and "@odata.nextLink" in doc  # Exchange Online's empty first page
    assert "odata.track-changes" in h["preference-applied"]
    link = urllib.parse.urlsplit(doc["@odata.nextLink"])
    assert link.path == "/v1.0/users/%s/calendarView/delta" % B
    assert list(urllib.parse.parse_qs(link.query)) == ["$skiptoken"]
    entries, dlink, pages = rnd(g, first())
    assert pages == 3  # the empty page, then 10 + 2
    assert {e["id"] for e in entries} == {gc.rest_id(m["id"]) for m in made}
    cv, _ = g.all_pages("users/%s/calendarView?%s" % (B, Q))
    assert sorted(entries, key=lambda e: e["id"]) == sorted(cv, key=lambda e: e["id"])
    assert list(urllib.parse.parse_qs(urllib.parse.urlsplit(dlink).query)) == ["$deltatoken"]
    entries, dlink2, _ = rnd(g, dlink)
    assert entries == []  # nothing changed
    assert dlink2 != dlink


def test_incremental_round(dsim):
    g = gc.Graph(dsim)
    keep = gc.create_item(dsim, B, subject="keep", start="2030-01-02T09:00:00Z", end="2030-01-02T10:00:00Z")
    change = gc.create_item(dsim, B, subject="change", start="2030-01-03T09:00:00Z", end="2030-01-03T10:00:00Z")
    gone = gc.create_item(dsim, B, subject="gone", start="2030-01-04T09:00:00Z", end="2030-01-04T10:00:00Z")
    series = gc.create_item(dsim, B, subject="daily", start="2030-01-10T08:00:00Z", end="2030-01-10T08:15:00Z",
                            recurrence={"pattern": "daily", "count": 3})
    outside = gc.create_item(dsim, B, subject="outside", start="2030-03-01T09:00:00Z", end="2030-03-01T10:00:00Z")
    entries, dlink, _ = rnd(g, first())
    assert len(entries) == 6 and gc.rest_id(outside["id"]) not in {e["id"] for e in entries}
    dsim.control("PATCH", gc.item_path(B, change["id"]), {"subject": "changed"}, expect=200)
    dsim.control("DELETE", gc.item_path(B, gone["id"]), expect=200)
    new = gc.create_item(dsim, B, subject="new", start="2030-01-05T09:00:00Z", end="2030-01-05T10:00:00Z")
    dsim.control("DELETE", gc.item_path(B, series["id"]) + "/occurrences/2", expect=200)
    gc.create_item(dsim, B, subject="outside too", start="2030-04-01T09:00:00Z", end="2030-04-01T10:00:00Z")
    entries, dlink, _ = rnd(g, dlink)
    by_id = {e["id"]: e for e in entries}
    assert by_id[gc.rest_id(change["id"])]["subject"] == "changed"
    assert by_id[gc.rest_id(new["id"])]["subject"] == "new"
    assert by_id[gc.rest_id(gone["id"])] == {"@odata.type": "#microsoft.graph.event", "id": gc.rest_id(gone["id"]),
                                             "@removed": {"reason": "deleted"}}
    assert gc.rest_id(keep["id"]) not in by_id
    removed = [e for e in entries if "@removed" in e]
    updated_occ = [e for e in entries if e.get("type") == "occurrence"]
    assert len(removed) == 2  # the deleted single and the deleted occurrence
    # The series changed (an occurrence was deleted), so its other occurrences have a new changeKey.
    assert len(updated_occ) == 2 and all(e["seriesMasterId"] == gc.rest_id(series["id"]) for e in updated_occ)
    assert len(entries) == 6
    entries, _, _ = rnd(g, dlink)
    assert entries == []


def test_cancel_and_private_arrive_as_updates(dsim):
    g = gc.Graph(dsim)
    it = gc.create_item(dsim, B, start="2030-01-06T09:00:00Z", end="2030-01-06T10:00:00Z")
    _, dlink, _ = rnd(g, first())
    dsim.control("PATCH", gc.item_path(B, it["id"]), {"cancelled": True, "sensitivity": "Private"}, expect=200)
    entries, _, _ = rnd(g, dlink)
    assert [(e["isCancelled"], e["sensitivity"]) for e in entries] == [(True, "private")]


def test_pages_follow_maxpagesize(dsim):
    g = gc.Graph(dsim)
    for i in range(5):
        gc.create_item(dsim, B, start="2030-01-%02dT09:00:00Z" % (i + 1), end="2030-01-%02dT10:00:00Z" % (i + 1))
    doc = g.ok(first(), headers={"Prefer": "odata.maxpagesize=2"})
    sizes = []
    while "@odata.nextLink" in doc:
        doc = g.ok(doc["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=2"})
        sizes.append(len(doc["value"]))
    assert sizes == [2, 2, 1] and "@odata.deltaLink" in doc


def test_select_is_ignored_and_filter_refused(dsim):
    g = gc.Graph(dsim)
    gc.create_item(dsim, B, start="2030-01-06T09:00:00Z", end="2030-01-06T10:00:00Z")
    entries, _, _ = rnd(g, first(q=Q + "&$select=subject"))
    assert len(entries) == 1 and {"subject", "start", "end", "showAs", "changeKey"} <= set(entries[0])
    for opt in ("$filter=subject%20eq%20'x'", "$orderby=subject", "$expand=attachments", "$search=x"):
        st, _, doc = g.get(first(q=Q + "&" + opt))
        assert st == 400 and doc["error"]["code"] == "ErrorInvalidUrlQuery", opt
    st, _, doc = g.get(first(q=""))
    assert st == 400 and doc["error"]["code"] == "ErrorInvalidParameter"


def gone(g, link):
    st, _, doc = g.get(link)
    assert st == 410, doc
    assert doc["error"]["code"] == "SyncStateNotFound"
    assert doc["error"]["message"].startswith("The sync state generation is not found; generation=")
    return doc


def test_unknown_altered_and_old_tokens(dsim):
    g = gc.Graph(dsim)
    gc.create_item(dsim, B, start="2030-01-06T09:00:00Z", end="2030-01-06T10:00:00Z")
    _, dlink, _ = rnd(g, first())
    gone(g, "users/%s/calendarView/delta?$deltatoken=bogus" % B)
    tok = urllib.parse.parse_qs(urllib.parse.urlsplit(dlink).query)["$deltatoken"][0]
    altered = tok[:-2] + ("AA" if tok[-2:] != "AA" else "BB")
    gone(g, "users/%s/calendarView/delta?$deltatoken=%s" % (B, altered))
    # Another mailbox's token is not ours.
    gone(g, "users/%s/calendarView/delta?$deltatoken=%s" % (C, tok))
    # The chain keeps the last 4 generations: the 5th round after this one drops it.
    link = dlink
    for _ in range(4):
        _, link, _ = rnd(g, link)
    doc = gone(g, dlink)
    assert "[highest=" in doc["error"]["message"]
    assert rnd(g, link)[0] == []


def test_control_expires_sync_states(dsim):
    g = gc.Graph(dsim)
    _, dlink, _ = rnd(g, first())
    _, dlink_a, _ = rnd(g, first(A))
    assert dsim.control("POST", "/graph/delta/expire", {"mailbox": B}, expect=200)[1] == {"expired": 1}
    gone(g, dlink)
    assert g.get(dlink_a)[0] == 200
    dsim.control("POST", "/graph/delta/expire", {}, expect=200)
    gone(g, dlink_a)


def test_config_turns_off_the_empty_first_page(dsim):
    g = gc.Graph(dsim)
    gc.create_item(dsim, B, start="2030-01-06T09:00:00Z", end="2030-01-06T10:00:00Z")
    dsim.control("POST", "/graph/config", {"delta_empty_first_page": False, "delta_page_size": 3}, expect=200)
    doc = g.ok(first())
    assert len(doc["value"]) == 1 and "@odata.deltaLink" in doc
    assert dsim.control("POST", "/graph/config", {"delta_page_size": 0})[0] == 400


def test_move_away_and_back_invalidates_tokens(dsim):
    g = gc.Graph(dsim)
    _, dlink, _ = rnd(g, first())
    dsim.control("POST", "/graph/mailboxes/move", {"mailbox": B, "to": "onprem"}, expect=200)
    st, _, doc = g.get(dlink)
    assert st == 404 and doc["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    dsim.control("POST", "/graph/mailboxes/move", {"mailbox": B, "to": "cloud"}, expect=200)
    gone(g, dlink)
    assert rnd(g, first())[1]
