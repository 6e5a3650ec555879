"""2,000 mailboxes through Autodiscover reach the live state. Streaming is grouped by ews-sim's
GroupingInformation (one per backend), at most 200 subscriptions per GetStreamingEvents, so
each backend holds ceil(n/200) connections, each impersonating a distinct mailbox of its own
group; under ews-sim's default limits nothing is throttled (no ErrorServerBusy, no
ErrorExceededConnectionCount)."""

import collections

from calsyncproc import counter, groups_needed, sim_streams, sim_subscriptions, user

N = 2000


def test_2000_mailboxes_live_grouped_per_backend(sim_factory, calsync_factory):
    sim = sim_factory("--mailboxes", str(N))
    mbs = [user(i) for i in range(1, N + 1)]
    cs = calsync_factory(sim, mbs, mode="stream", autodiscover=True, log_level="info")
    cs.start()
    cs.wait_live(timeout=80)

    subs = sim_subscriptions(sim)
    per_mb = collections.Counter(s["mailbox"] for s in subs)
    assert set(per_mb) == set(mbs) and max(per_mb.values()) == 1, "not exactly one subscription per mailbox"
    assert all(s["kind"] == "streaming" for s in subs)
    backend_of = {s["mailbox"]: s["backend"] for s in subs}  # where each mailbox lives (and subscribed)
    by_backend = collections.Counter(backend_of.values())
    assert len(by_backend) == 2, by_backend

    streams = sim_streams(sim)
    sub_ids = {s["id"]: s for s in subs}
    streams_by_backend = collections.Counter(st["backend"] for st in streams)
    for b, n in by_backend.items():
        assert streams_by_backend[b] == groups_needed(n), (b, n, streams_by_backend)
    budgets = [st["budget"] for st in streams]
    assert len(set(budgets)) == len(budgets), "two streams share a budget: %r" % budgets
    covered = set()
    for st in streams:
        assert st["budget"].startswith("mailbox:"), st["budget"]  # impersonating
        assert len(st["subscriptions"]) <= 200
        members = {sub_ids[i]["mailbox"] for i in st["subscriptions"]}
        assert {sub_ids[i]["backend"] for i in st["subscriptions"]} == {st["backend"]}
        # The impersonated mailbox is one of the group's own mailboxes, on the same backend.
        assert backend_of[st["budget"][len("mailbox:"):]] == st["backend"], st["budget"]
        covered |= members
    assert covered == set(mbs), "%d mailboxes not streaming" % (N - len(covered))
    assert sim.counters()["streaming_subscriptions_connected"]["total"] == N

    c = sim.counters()
    rejections = c.get("rejections", {})
    assert not {k: v for k, v in rejections.items() if k.startswith(("ErrorServerBusy", "ErrorExceeded"))}, rejections
    assert counter(c, "subscriptions_created") == N

    # Every mailbox has its presence and its grouping; a sample of mirrors equals ews-sim's view.
    rows = cs.mailbox_rows()
    groupings = collections.defaultdict(set)
    for m in mbs:
        assert rows[m]["grouping"], m
        groupings[backend_of[m]].add(rows[m]["grouping"])
    assert all(len(g) == 1 for g in groupings.values()) and len(set.union(*groupings.values())) == 2, groupings
    assert len(cs.stored_presence()) == N
    assert len({ln["user"] for ln in cs.lines()}) == N
    cs.wait_mirrors_equal(mbs[::97], timeout=30)
    assert cs.stop(timeout=30) == 0
