"""`calsync decode`: every EWS response among the msdocs fixtures and the streamed wire body
decode to the JSON lines of docs/decode.md, with the exit statuses it promises.

The binary comes from the meson build directory in $CALSYNC_BUILD, or ./build at the top of
the source tree (scripts/test points CALSYNC_BUILD at the ASan+UBSan build)."""

import json
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
MSDOCS = os.path.join(FIXTURES, "msdocs")
WIRE = os.path.join(FIXTURES, "wire", "getstreamingevents-stream.xmls")
TIMEOUT = 60  # seconds; generous for a sanitizer build on a loaded machine


@pytest.fixture(scope="module")
def calsync():
    build = os.environ.get("CALSYNC_BUILD") or os.path.join(ROOT, "build")
    path = os.path.join(os.path.abspath(build), "calsync")
    if not os.access(path, os.X_OK):
        pytest.fail("calsync binary not found at %s: build it (meson setup build && ninja -C build) "
                    "or set CALSYNC_BUILD to a meson build directory" % path)
    return path


def run(calsync, *args, stdin=None):
    return subprocess.run([calsync, "decode", *args], input=stdin, capture_output=True,
                          timeout=TIMEOUT)


def decode_lines(calsync, *args, stdin=None):
    p = run(calsync, *args, stdin=stdin)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stderr == b""
    return [json.loads(line) for line in p.stdout.decode().splitlines()]


def get(obj, path):
    """obj at a dotted path: "messages.0.items.1.item_id"."""
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


SV_595 = "8.0.595.0"
SV_602 = "8.0.602.0"
SV_628 = "8.0.628.0"
SV_685 = "8.0.685.8"

# Every response file in msdocs/, with the values its one JSON line must hold.
RESPONSES = {
    "finditem-operation-1.xml": {
        "operation": "FindItem", "server_version": SV_595,
        "messages.0.class": "Success", "messages.0.code": "NoError", "messages.0.text": None,
        "messages.0.back_off_ms": None,
        "messages.0.total_items_in_view": 10, "messages.0.includes_last_item_in_range": True,
        "messages.0.items.0.item_id": "AS4AUn=", "messages.0.items.0.change_key": "fsVU4==",
        "messages.0.items.1.item_id": "AS4AUM=", "messages.0.items.1.start": None,
    },
    "finditem-operation-2.xml": {
        "operation": "FindItem", "messages.0.class": "Error",
        "messages.0.code": "ErrorInvalidIdMalformed", "messages.0.text": "Id is malformed.",
        "messages.0.items": None, "messages.0.total_items_in_view": None,
        "messages.0.includes_last_item_in_range": None,
    },
    "getevents-operation-1.xml": {
        "operation": "GetEvents", "server_version": SV_628, "messages.0.code": "NoError",
        "messages.0.notifications.0.subscription_id": "f6bc657d-dde1-4f94-952d-143b95d6483d",
        "messages.0.notifications.0.previous_watermark": "AAAAAMAGAAAAAAAAAQ==",
        "messages.0.notifications.0.more_events": False,
        "messages.0.notifications.0.events.0.type": "NewMail",
        "messages.0.notifications.0.events.0.timestamp": "2006-08-22T00:36:29Z",
        "messages.0.notifications.0.events.0.watermark": "AAAAAM4GAAAAAAAAAQ==",
        "messages.0.notifications.0.events.0.item_id": "AQApAHR",
        "messages.0.notifications.0.events.0.parent_folder_id": "AQApAH",
        "messages.0.notifications.0.events.1.item_id": "AQApAHRw",
        "messages.0.notifications.0.events.1.timestamp": "2006-08-22T01:00:50Z",
    },
    "getevents-operation-2.xml": {
        "operation": "GetEvents", "messages.0.class": "Error",
        "messages.0.code": "ErrorSubscriptionAccessDenied", "messages.0.notifications": None,
    },
    "getitem-operation-calendar-item-1.xml": {
        "operation": "GetItem", "server_version": SV_602,
        "messages.0.items.0.item_id": "ASUAd", "messages.0.items.0.change_key": "otlIqB==",
        "messages.0.items.0.start": None,
    },
    "getitem-operation-calendar-item-2.xml": {
        "operation": "GetItem", "messages.0.items.0.item_id": "ASUAdTB",
        "messages.0.items.0.start": "2006-06-16T00:30:00Z",
        "messages.0.items.0.end": "2006-06-16T01:00:00Z",
        "messages.0.items.0.free_busy": "Busy", "messages.0.items.0.calendar_item_type": "Single",
        "messages.0.items.0.organizer": "someone@example.com",
    },
    "getitem-operation-calendar-item-3.xml": {
        "operation": "GetItem", "messages.0.items.0.item_id": "ASUAdT",
        "messages.0.items.0.sensitivity": "Normal", "messages.0.items.0.all_day": False,
        "messages.0.items.0.is_cancelled": False, "messages.0.items.0.free_busy": "Busy",
        "messages.0.items.0.organizer": "someone@example.com", "messages.0.items.0.subject": None,
    },
    "getuseravailability-operation-1.xml": {
        "operation": "GetUserAvailability", "server_version": "8.0.665.7",
        "messages.0.free_busy_view.type": "DetailedMerged",
        "messages.0.free_busy_view.merged": "000002220220000000000000",
        "messages.0.free_busy_view.events.0.start": "2006-10-16T13:00:00Z",
        "messages.0.free_busy_view.events.0.end": "2006-10-16T13:30:00Z",
        "messages.0.free_busy_view.events.0.busy_type": "Busy",
        "messages.1.free_busy_view.type": "FreeBusyMerged",
        "messages.1.free_busy_view.events.0.busy_type": "Tentative",
        "messages.1.free_busy_view.events.0.start": "2006-10-16T16:00:00Z",
    },
    "getuseroofsettings-operation-1.xml": {
        "operation": "GetUserOofSettings", "server_version": SV_685,
        "messages.0.class": "Success", "messages.0.code": "NoError",
    },
    "getuseroofsettings-operation-2.xml": {
        "operation": None, "server_version": SV_685, "fault.code": "soap:Client",
        "fault.response_code": "-2146233088", "fault.back_off_ms": None,
    },
    "getusersettings-operation-soap-1.xml": {
        "operation": "GetUserSettings", "server_version": None, "error_code": "NoError",
        "users.0.error_code": "NoError", "users.0.error_message": "No error.",
        "users.0.redirect_target": None, "users.0.cas_version": "14.00.0478.000",
        "users.0.ews_supported_schemas": "Exchange2007, Exchange2010",
        "users.0.internal_ews_url": None,
    },
    "how-to-stream-notifications-about-mailbox-events-by-using-ews-in-exchange-1.xml": {
        "operation": "Subscribe", "server_version": "15.0.785.6",
        "messages.0.subscription_id": "JgBibjFwcjAzbWIyMDIubmFtcHJkMDMucHJvZC5vdXRsb29rLmNvbRAAAADwXxVesOnHS5BxUHKwAW88SHjwd1iB0Ag=",
        "messages.0.watermark": None,
    },
    "subscribe-operation-1.xml": {
        "operation": "Subscribe", "messages.0.subscription_id": "39ea5d0f-f062-455e-a1e9-89c0304390f4",
        "messages.0.watermark": "AAAAAHgGAAAAAAAAAQ==",
    },
    "subscribe-operation-2.xml": {
        "operation": "Subscribe", "messages.0.class": "Error",
        "messages.0.code": "ErrorSubscriptionDelegateAccessNotSupported",
        "messages.0.subscription_id": None,
    },
    "subscribe-operation-4.xml": {
        "operation": "Subscribe", "messages.0.subscription_id": "83826921-afdf-48be-b469-628cc02b5f49",
        "messages.0.watermark": "AQAAAOpvG0LURVdOhQkPOWZLPcI8EgAAAAAAAAE=",
    },
    "syncfolderitems-operation-1.xml": {
        "operation": "SyncFolderItems", "messages.0.sync_state": "H4sIAAAAA=",
        "messages.0.includes_last_item_in_range": True,
        "messages.0.changes.0.type": "Create", "messages.0.changes.0.item_id": "AQApAHRwA==",
        "messages.0.changes.0.item.subject": "Budget Q3",
        "messages.0.changes.0.item.start": "2006-08-02T17:30:00Z",
        "messages.0.changes.0.item.location": "Conference Room 2",
        "messages.0.changes.0.item.organizer": "dpark@example.com",
    },
    "syncfolderitems-operation-2.xml": {
        "operation": "SyncFolderItems", "messages.0.class": "Error",
        "messages.0.code": "ErrorInvalidSyncStateData", "messages.0.sync_state": "",
        "messages.0.changes": None,
    },
    "unsubscribe-operation-1.xml": {
        "operation": "Unsubscribe", "messages.0.class": "Success", "messages.0.code": "NoError",
    },
    "unsubscribe-operation-2.xml": {
        "operation": "Unsubscribe", "messages.0.class": "Error",
        "messages.0.code": "ErrorSubscriptionNotFound",
        "messages.0.text": "The specified subscription was not found.",
    },
}

# The rest of msdocs/ are requests, which are not responses: decode refuses them.
REQUESTS = [
    "calendarview-1.xml", "finditem-operation-0.xml", "getevents-operation-0.xml",
    "getitem-operation-calendar-item-0.xml", "getstreamingevents-operation-0.xml",
    "getuseravailability-operation-0.xml", "getuseroofsettings-operation-0.xml",
    "getusersettings-operation-soap-0.xml",
    "how-to-add-appointments-by-using-exchange-impersonation-0.xml",
    "how-to-stream-notifications-about-mailbox-events-by-using-ews-in-exchange-0.xml",
    "how-to-stream-notifications-about-mailbox-events-by-using-ews-in-exchange-2.xml",
    "subscribe-operation-0.xml", "syncfolderitems-operation-0.xml", "unsubscribe-operation-0.xml",
]

# The keys of each message kind, in their stable order (docs/decode.md).
COMMON = ["class", "code", "text", "back_off_ms"]
ITEM_KEYS = ["item_id", "change_key", "subject", "start", "end", "all_day", "free_busy",
             "sensitivity", "calendar_item_type", "is_cancelled", "location", "organizer", "uid",
             "categories"]
EVENT_KEYS = ["type", "timestamp", "watermark", "item_id", "folder_id", "parent_folder_id",
              "old_item_id", "old_parent_folder_id"]
MESSAGE_KEYS = {
    "Subscribe": COMMON + ["subscription_id", "watermark"],
    "GetEvents": COMMON + ["notifications"],
    "GetStreamingEvents": COMMON + ["connection_status", "error_subscription_ids", "notifications"],
    "FindItem": COMMON + ["items", "includes_last_item_in_range", "total_items_in_view"],
    "GetItem": COMMON + ["items"],
    "SyncFolderItems": COMMON + ["sync_state", "includes_last_item_in_range", "changes"],
    "GetUserAvailability": COMMON + ["free_busy_view"],
    "Unsubscribe": COMMON,
    "GetUserOofSettings": COMMON,
}


def test_every_msdocs_file_is_listed():
    files = sorted(f for f in os.listdir(MSDOCS) if f.endswith(".xml"))
    assert files == sorted(list(RESPONSES) + REQUESTS)


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_msdocs_response(calsync, name):
    lines = decode_lines(calsync, os.path.join(MSDOCS, name))
    assert len(lines) == 1
    doc = lines[0]
    for path, want in RESPONSES[name].items():
        assert get(doc, path) == want, path
    # Exactly one of fault / messages / Autodiscover users, after operation and server_version.
    keys = list(doc)
    assert keys[:2] == ["operation", "server_version"]
    assert keys[2:] in (["fault"], ["messages"], ["error_code", "users"])
    if "fault" in doc:
        assert list(doc["fault"]) == ["code", "string", "response_code", "back_off_ms"]
    for m in doc.get("messages") or []:
        assert list(m) == MESSAGE_KEYS[doc["operation"]]
        for it in m.get("items") or []:
            assert list(it) == ITEM_KEYS
        for ch in m.get("changes") or []:
            assert list(ch) == ["type", "item_id", "item"]
            assert ch["item"] is None or list(ch["item"]) == ITEM_KEYS
        for n in m.get("notifications") or []:
            assert list(n) == ["subscription_id", "previous_watermark", "more_events", "events"]
            for e in n["events"]:
                assert list(e) == EVENT_KEYS
        if m.get("free_busy_view") is not None:
            assert list(m["free_busy_view"]) == ["type", "merged", "events"]
            for e in m["free_busy_view"]["events"] or []:
                assert list(e) == ["start", "end", "busy_type"]


@pytest.mark.parametrize("name", REQUESTS)
def test_msdocs_request_is_refused(calsync, name):
    p = run(calsync, os.path.join(MSDOCS, name))
    assert p.returncode == 2
    assert p.stdout == b""
    err = p.stderr.decode()
    assert "not an EWS or Autodiscover response" in err
    assert "byte offset" in err


SUB_OK = "JgBtYngxLmNvbnRvc28uZXhhbXBsZRAAAAAx2bq3ZfFxSI3OkDQ5WLkyXGbYeFh81Ag="
SUB_GONE = "JgBtYngxLmNvbnRvc28uZXhhbXBsZRAAAACgpH8+1+Y5TqXJcJp4s2RYXGbYeFh81Ag="
ITEM_ID = ("AAMkADQ4ZjRlZTRjLTZjYWItNDBmNS1iMmI0LWM0ODhiZDc0MjFiNQBGAAAAAAC3s/aBR7DxQbvm8aQb9bFNBwDN"
           "2LMCLCtnQ54fE9QHnrIuAAAAAAENAADN2LMCLCtnQ54fE9QHnrIuAAAN+N9QAAA=")
CAL_ID = ("AQMkADQ4ZjRlZTRjLTZjYWItNDBmNS1iMmI0LWM0ODhiZDc0MjFiNQAuAAADt7P2gUew8UG75vGkG/WxTQEAzdiz"
          "AiwrZ0OeHxPUB56yLgAAAgENAAAA")


def check_wire(lines):
    assert len(lines) == 5
    for doc in lines:
        assert doc["operation"] == "GetStreamingEvents"
        assert doc["server_version"] == "15.2.1748.10"
        assert len(doc["messages"]) == 1
        assert list(doc["messages"][0]) == MESSAGE_KEYS["GetStreamingEvents"]
    m = [doc["messages"][0] for doc in lines]
    assert [x["connection_status"] for x in m] == ["OK", None, "OK", "OK", "Closed"]
    assert [x["class"] for x in m] == ["Success", "Success", "Success", "Error", "Success"]
    assert [x["notifications"] is None for x in m] == [True, False, True, True, True]
    assert [x["error_subscription_ids"] for x in m] == [None, None, None, [SUB_GONE], None]
    assert m[3]["code"] == "ErrorSubscriptionNotFound"
    (n,) = m[1]["notifications"]
    assert n["subscription_id"] == SUB_OK
    assert n["previous_watermark"] is None and n["more_events"] is None
    assert [e["type"] for e in n["events"]] == ["Created", "Modified", "Modified"]
    assert [e["item_id"] for e in n["events"]] == [ITEM_ID, ITEM_ID, None]
    assert [e["timestamp"] for e in n["events"]] == ["2026-11-27T09:14:02Z", "2026-11-27T09:14:03Z",
                                                    "2026-11-27T09:14:03Z"]
    assert n["events"][0]["parent_folder_id"] == CAL_ID
    assert n["events"][2]["folder_id"] == CAL_ID
    assert all(e["watermark"] is None for e in n["events"])


def test_wire_stream_file(calsync):
    check_wire(decode_lines(calsync, WIRE))


def test_wire_stream_stdin(calsync):
    with open(WIRE, "rb") as f:
        body = f.read()
    check_wire(decode_lines(calsync, stdin=body))
    check_wire(decode_lines(calsync, "-", stdin=body))


def test_several_documents_with_declarations(calsync):
    """Whole response files back to back, XML declarations and all, with a BOM in between."""
    names = ["subscribe-operation-1.xml", "getevents-operation-1.xml", "unsubscribe-operation-2.xml"]
    data = b""
    for name in names:
        with open(os.path.join(MSDOCS, name), "rb") as f:
            data += b"\xef\xbb\xbf" + f.read() + b"\r\n"
    lines = decode_lines(calsync, stdin=data)
    assert [doc["operation"] for doc in lines] == ["Subscribe", "GetEvents", "Unsubscribe"]


def test_malformed_input_names_the_offset(calsync):
    with open(WIRE, "rb") as f:
        body = f.read()
    first = body.index(b"</Envelope>") + len(b"</Envelope>")
    # The second envelope broken: the first still comes out, then exit 2 with the offset.
    bad = body[:first] + b"<Envelope><Body></Envelope>"
    p = run(calsync, stdin=bad)
    assert p.returncode == 2
    assert len(p.stdout.decode().splitlines()) == 1
    err = p.stderr.decode()
    assert "offset %d" % first in err
    # Not XML at all.
    p = run(calsync, stdin=b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    assert p.returncode == 2
    assert p.stdout == b""
    assert "offset" in p.stderr.decode()


def test_bad_value_names_offset_and_line(calsync):
    doc = (b'<?xml version="1.0"?>\n'
           b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"\n'
           b' xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"\n'
           b' xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Body>\n'
           b'<m:GetEventsResponse><m:ResponseMessages>\n'
           b'<m:GetEventsResponseMessage ResponseClass="Success"><m:Notification>\n'
           b'<t:MoreEvents>perhaps</t:MoreEvents>\n'
           b'</m:Notification></m:GetEventsResponseMessage></m:ResponseMessages>\n'
           b'</m:GetEventsResponse></s:Body></s:Envelope>\n')
    p = run(calsync, stdin=doc)
    assert p.returncode == 2
    err = p.stderr.decode()
    assert "byte offset 22" in err
    assert "line 7: t:MoreEvents: not a boolean" in err


def test_truncated_stream(calsync):
    with open(WIRE, "rb") as f:
        body = f.read().rstrip()
    for cut in (len(body) - 1, len(body) // 2, 10):
        p = run(calsync, stdin=body[:cut])
        assert p.returncode == 2, cut
        assert "truncated" in p.stderr.decode() and "offset" in p.stderr.decode()


def test_empty_input_and_errors(calsync, tmp_path):
    p = run(calsync, stdin=b"")
    assert p.returncode == 2
    assert "no SOAP envelope" in p.stderr.decode()
    p = run(calsync, str(tmp_path / "missing.xml"))
    assert p.returncode == 1
    assert "cannot open" in p.stderr.decode()
    p = run(calsync, str(tmp_path))
    assert p.returncode == 1
    p = run(calsync, "a.xml", "b.xml")
    assert p.returncode == 2
    p = run(calsync, "--bogus")
    assert p.returncode == 2
    p = run(calsync, "--help")
    assert p.returncode == 0
    assert b"Usage: calsync decode [FILE]" in p.stdout


def test_dtd_is_refused(calsync):
    doc = (b'<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>&x;</s:Body>'
           b'</s:Envelope>')
    p = run(calsync, stdin=doc)
    assert p.returncode == 2
    assert b"root:" not in p.stdout + p.stderr
