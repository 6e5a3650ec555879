"""Interoperability: Debian's python3-exchangelib, a real third-party EWS client, against
ews-sim: calendar views, pull and streaming subscriptions with impersonation, and the
ErrorServerBusy back-off. If ews-sim answered anything exchangelib cannot parse, or
refused what exchangelib sends (its requests are validated against the schema), these
tests fail."""

import threading
import time
from datetime import datetime, timedelta

import pytest

from exchangelib import (  # noqa: E402
    BASIC,
    IMPERSONATION,
    NTLM,
    UTC,
    Account,
    Build,
    Configuration,
    Credentials,
    EWSDateTime,
    FailFast,
    FaultTolerance,
    Version,
)
from exchangelib.errors import ErrorImpersonateUserDenied, ErrorServerBusy  # noqa: E402
from exchangelib.protocol import BaseProtocol, close_connections  # noqa: E402

from simharness import wait_for  # noqa: E402

USER = "user00001@contoso.example"


@pytest.fixture(autouse=True)
def _fresh_exchangelib_state():
    # exchangelib caches protocols (and their connection pools) per endpoint; tests must
    # not share them across simulator processes.
    yield
    close_connections()
    BaseProtocol.RETRY_WAIT = 10


def account(sim, smtp=USER, auth=NTLM, retry_policy=None):
    user = "CONTOSO\\svc" if auth == NTLM else "svc@contoso.example"
    config = Configuration(
        service_endpoint=sim.ews,
        credentials=Credentials(user, "Passw0rd!"),
        auth_type=auth,
        version=Version(build=Build(15, 1)),
        retry_policy=retry_policy or FailFast(),
        max_connections=4,
    )
    return Account(primary_smtp_address=smtp, config=config, autodiscover=False,
                   access_type=IMPERSONATION, default_timezone=UTC)


def window():
    today = EWSDateTime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1), today + timedelta(days=14)


@pytest.mark.parametrize("auth", [NTLM, BASIC])
def test_calendar_view(sim, auth):
    a = account(sim, auth=auth)
    start, end = window()
    items = list(a.calendar.view(start=start, end=end).only(
        "subject", "start", "end", "is_all_day", "legacy_free_busy_status", "sensitivity", "type"))
    assert items, "the demo calendar has items in the window"
    for it in items:
        assert it.end >= start and it.start < end
        assert it.legacy_free_busy_status in ("Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData")
        assert it.type in ("Single", "Occurrence", "Exception")
    # the same view through the simulator's own expansion
    _, view = sim.control("GET", "/mailboxes/%s/view?start=%s&end=%s" % (
        USER, start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")), expect=200)
    assert len(items) == len(view["items"] if isinstance(view, dict) else view)


def test_impersonation_denied(sim):
    sim.control("POST", "/accounts", {"smtp": "plain@contoso.example", "password": "pw"}, expect=201)
    config = Configuration(service_endpoint=sim.ews, credentials=Credentials("CONTOSO\\plain", "pw"),
                           auth_type=NTLM, version=Version(build=Build(15, 1)), retry_policy=FailFast())
    a = Account(primary_smtp_address=USER, config=config, autodiscover=False, access_type=IMPERSONATION)
    with pytest.raises(ErrorImpersonateUserDenied):
        list(a.calendar.view(*window()))


def create_item(sim, subject, minutes_from_now=30):
    now = datetime.utcnow().replace(microsecond=0)
    body = {
        "subject": subject,
        "start": (now + timedelta(minutes=minutes_from_now)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (now + timedelta(minutes=minutes_from_now + 30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": "Busy",
    }
    _, item = sim.control("POST", "/mailboxes/%s/items" % USER, body, expect=201)
    return item


def test_pull_subscription(sim):
    a = account(sim)
    sub_id, watermark = a.calendar.subscribe_to_pull(timeout=10)
    assert sub_id and watermark
    item = create_item(sim, "Pull über exchangelib")
    notes = list(a.calendar.get_events(sub_id, watermark))
    events = [e for n in notes for e in n.events]
    created = [e for e in events if type(e).__name__ == "CreatedEvent"]
    assert created and created[0].item_id.id == item["id"]
    last = notes[-1].events[-1].watermark
    # nothing new: a StatusEvent carrying the watermark
    quiet = [e for n in a.calendar.get_events(sub_id, last) for e in n.events]
    assert [type(e).__name__ for e in quiet] == ["StatusEvent"]
    assert a.calendar.unsubscribe(sub_id) is True


def test_streaming_subscription(sim_factory):
    # 60x time scale: exchangelib's one-minute ConnectionTimeout lasts one real second.
    sim = sim_factory("--time-scale", "60")
    a = account(sim)
    sub_id = a.calendar.subscribe_to_streaming()
    got = []

    def reader():
        for n in a.calendar.get_streaming_events(sub_id, connection_timeout=1):
            got.append(n)

    t = threading.Thread(target=reader)
    t.start()
    wait_for(lambda: sim.counters()["streaming_connections"]["total"] >= 1,
             timeout=20, what="exchangelib's stream to open")
    item = create_item(sim, "Streaming")
    t.join(60)
    assert not t.is_alive(), "exchangelib did not see the stream end with Closed"
    events = [e for n in got for e in n.events]
    ids = [e.item_id.id for e in events if getattr(e, "item_id", None) is not None]
    assert item["id"] in ids
    assert a.calendar.unsubscribe(sub_id) is True


def test_server_busy_back_off(sim):
    # One ErrorServerBusy with a 2 s back-off: exchangelib with a fault-tolerant policy waits
    # it out and succeeds; with FailFast it raises and reports the back-off.
    sim.control("POST", "/faults", {"kind": "ews_fault", "code": "ErrorServerBusy", "back_off_ms": 2000,
                                    "count": 1, "operation": "FindItem"}, expect=201)
    a = account(sim, retry_policy=FailFast())
    with pytest.raises(ErrorServerBusy) as exc:
        list(a.calendar.view(*window()))
    assert exc.value.back_off == 2
    # exchangelib caches one protocol (with its retry policy) per endpoint and credentials
    close_connections()
    sim.control("POST", "/faults", {"kind": "ews_fault", "code": "ErrorServerBusy", "back_off_ms": 2000,
                                    "count": 1, "operation": "FindItem"}, expect=201)
    b = account(sim, retry_policy=FaultTolerance(max_wait=30))
    t0 = time.monotonic()
    items = list(b.calendar.view(*window()))
    assert time.monotonic() - t0 >= 2.0
    assert items
