"""Calendar changes made on ews-sim (create, move, shorten, cancel, delete, rename, status)
reach calsync's presence within 5 s with streaming notifications and within one pull interval
+ 5 s with pull notifications, and the mirror stays equal to ews-sim's calendar item by item.
The same for mailboxes in Exchange Online through Microsoft Graph: within 5 s with change
notifications, within one delta interval + 5 s with delta polling."""

import time

import pytest

from calsyncproc import (clear_calendar, create_item, delete_item, iso, patch_item, user, xml_attr)
from test_run_graph import SECRET, SECRET_ENV, free_port, graph_xml

PULL_INTERVAL = 5  # seconds, the smallest calsync accepts
DELTA_INTERVAL = 10  # seconds, the smallest <delta interval> calsync accepts
LIMIT = {"stream": 5.0, "pull": PULL_INTERVAL + 5.0, "graph-notify": 5.0, "graph-delta": DELTA_INTERVAL + 5.0}
BASE = {"stream": 1, "pull": 11, "graph-notify": 1, "graph-delta": 11}  # each mode its own mailboxes


@pytest.fixture(scope="module")
def ews_sim(module_sim_factory):
    return module_sim_factory("--mailboxes", "30")


@pytest.fixture(scope="module")
def graph_sim(module_sim_factory, certs):
    """Every mailbox in Exchange Online, over HTTPS (Graph notifications need it)."""
    return module_sim_factory("--mailboxes", "30", "--graph-listen", "127.0.0.1:0", "--cloud-mailboxes", "all",
                              "--tls-cert", certs["cert"], "--tls-key", certs["key"], "--graph-notify-insecure")


def make_calsync(calsync_factory, sim, mbs, mode, certs):
    if mode in ("stream", "pull"):
        return calsync_factory(sim, mbs, mode=mode, sync={"pull_interval": "%ds" % PULL_INTERVAL})
    notify = {"port": free_port(), "cert": certs["cert"], "key": certs["key"]}
    g = graph_xml(sim, mode="notify" if mode == "graph-notify" else "delta", interval="%ds" % DELTA_INTERVAL,
                  notify=notify)
    return calsync_factory(sim, mbs, mode="stream", autodiscover=True, env={SECRET_ENV: SECRET},
                           extra='<tls ca_file="%s"/>' % xml_attr(certs["ca"]) + g)


def run_ops(cs, ops, limit):
    """ops: (smtp, change function, expected line fields). Each change is made, then every
    expected line must appear within limit seconds of its own change."""
    after = cs.max_id()
    done = []
    for smtp, fn, expect in ops:
        fn()
        done.append((smtp, time.monotonic(), expect))
    for smtp, t, expect in done:
        remaining = max(0.0, t + limit - time.monotonic())
        try:
            cs.wait_line(smtp, remaining, after_id=after, what="%s's change within %.0fs" % (smtp, limit),
                         reason="calendar-changed", **expect)
        except AssertionError as e:
            raise AssertionError("%s; lines since: %r" % (e, [ln for ln in cs.lines_for(smtp) if ln["id"] > after]))
    return after


@pytest.mark.parametrize("mode", ["stream", "pull", "graph-notify", "graph-delta"])
def test_changes_reach_presence(request, calsync_factory, certs, mode):
    sim = request.getfixturevalue("graph_sim" if mode.startswith("graph") else "ews_sim")
    mbs = [user(BASE[mode] + i) for i in range(6)]
    create_mb, move_out_mb, shorten_mb, cancel_mb, delete_mb, move_in_mb = mbs
    for m in mbs:
        clear_calendar(sim, m)
    T = int(time.time()) // 60 * 60  # this minute: every item below is placed around it
    M = 60
    items = {}
    for m, subj in ((move_out_mb, "Move me"), (shorten_mb, "Shorten me"), (cancel_mb, "Cancel me"),
                    (delete_mb, "Delete me")):
        items[m] = create_item(sim, m, subject=subj, start=T - 30 * M, end=T + 30 * M)["id"]
    items[move_in_mb] = create_item(sim, move_in_mb, subject="Move in", start=T + 120 * M, end=T + 180 * M)["id"]

    cs = make_calsync(calsync_factory, sim, mbs, mode, certs)
    cs.start()
    cs.wait_live()
    # The first presence of every mailbox is "initial" and right.
    for m in mbs:
        cs.wait_line(m, 10, reason="initial")
    for m, subj in ((move_out_mb, "Move me"), (shorten_mb, "Shorten me"), (cancel_mb, "Cancel me"),
                    (delete_mb, "Delete me")):
        ln = cs.current(m)
        assert (ln["state"], ln["profile"], ln["subject"], ln["since"], ln["until"]) == \
            ("busy", "In a meeting", subj, iso(T - 30 * M), iso(T + 30 * M)), ln
        assert ln["forward"] is None
    for m in (create_mb, move_in_mb):
        ln = cs.current(m)
        assert (ln["state"], ln["profile"], ln["subject"], ln["since"]) == ("free", None, None, None), ln
    assert cs.current(move_in_mb)["until"] == iso(T + 120 * M)
    assert cs.current(create_mb)["until"] is None
    cs.wait_mirrors_equal()

    created = {}
    ops = [
        (create_mb, lambda: created.update(create_item(sim, create_mb, subject="Created", start=T - 15 * M,
                                                       end=T + 45 * M)),
         {"state": "busy", "subject": "Created", "since": iso(T - 15 * M), "until": iso(T + 45 * M)}),
        (move_out_mb, lambda: patch_item(sim, move_out_mb, items[move_out_mb], start=T + 60 * M, end=T + 90 * M),
         {"state": "free", "subject": None, "until": iso(T + 60 * M)}),
        (shorten_mb, lambda: patch_item(sim, shorten_mb, items[shorten_mb], end=T - 1 * M),
         {"state": "free", "subject": None, "since": iso(T - 1 * M)}),
        (cancel_mb, lambda: patch_item(sim, cancel_mb, items[cancel_mb], cancelled=True),
         {"state": "free", "subject": None}),
        (delete_mb, lambda: delete_item(sim, delete_mb, items[delete_mb]),
         {"state": "free", "subject": None, "since": None, "until": None}),
        (move_in_mb, lambda: patch_item(sim, move_in_mb, items[move_in_mb], start=T - 60 * M, end=T + 60 * M),
         {"state": "busy", "subject": "Move in", "since": iso(T - 60 * M), "until": iso(T + 60 * M)}),
    ]
    after = run_ops(cs, ops, LIMIT[mode])
    cs.wait_mirrors_equal()
    # Exactly one line per change: nothing repeated for the mailboxes that changed once.
    for m in mbs:
        assert len([ln for ln in cs.lines_for(m) if ln["id"] > after]) == 1, cs.lines_for(m)

    # Second round: the visible tuple changes without a change of state.
    ops = [
        (create_mb, lambda: patch_item(sim, create_mb, created["id"], subject="Renamed"),
         {"state": "busy", "subject": "Renamed"}),
        (move_in_mb, lambda: patch_item(sim, move_in_mb, items[move_in_mb], status="OOF"),
         {"state": "oof", "profile": "Out of office", "subject": "Move in"}),
        (cancel_mb, lambda: patch_item(sim, cancel_mb, items[cancel_mb], cancelled=False, sensitivity="Private",
                                       subject="Doctor"),
         {"state": "busy", "subject": "private"}),
    ]
    run_ops(cs, ops, LIMIT[mode])
    cs.wait_mirrors_equal()

    # A change that leaves presence as it was writes no line, but the mirror follows it.
    n_lines = len(cs.lines())
    patch_item(sim, create_mb, created["id"], location="Room 4")
    cs.wait_mirrors_equal(timeout=LIMIT[mode] + 5)
    assert len(cs.lines()) == n_lines, cs.lines()[n_lines:]

    # ids strictly increase and the output matches the store's log and current presence.
    ids = [ln["id"] for ln in cs.lines()]
    assert ids == sorted(set(ids)), ids
    assert set(ids) <= set(cs.presence_event_ids())
    stored = cs.stored_presence()
    for m in mbs:
        ln = cs.current(m)
        assert stored[m]["state"] == ln["state"] and stored[m]["subject"] == ln["subject"], (stored[m], ln)
    assert cs.stop() == 0
