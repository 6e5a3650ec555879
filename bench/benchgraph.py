"""bench/run's Microsoft Graph side: ews-sim's Graph options, the <graph> element, a throwaway
CA for change notifications, and the Graph figures from ews-sim's /counters.

Backends (docs/graph.md, docs/graph-sim.md): `ews` (every mailbox on premises, as before),
`graph` (every mailbox in Exchange Online: `--cloud-mailboxes all`) and `hybrid` (user00001
to user<N/2> in the cloud, the rest on premises). calsync finds each cloud mailbox through
on-premises Autodiscover (RedirectAddress) and serves it through Graph, by delta polling
(`<delta interval>`) or change notifications to its own HTTPS listener (`<notifications>`)."""

import os
import re
import socket
import subprocess

from calsyncproc import xml_attr

SECRET_ENV = "CALSYNC_BENCH_GRAPH_SECRET"
SECRET = "sim~GraphSecret.0123456789-abcdefghijkl"  # ews-sim's default client secret
# What reads a Graph mailbox's window (a round of calendarView/delta, or a plain calendarView).
READ_OPS = ("calendarView.delta", "calendarView")


def cloud_count(a):
    """How many of the N mailboxes live in Exchange Online."""
    return {"ews": 0, "graph": a.mailboxes, "hybrid": a.mailboxes // 2}[a.backend]


def make_certs(d):
    """A throwaway CA and a server certificate it signed for 127.0.0.1 and localhost (as
    tests/conftest.py's certs fixture): calsync's notification listener and ews-sim's TLS."""
    os.makedirs(d, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=calsync bench CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "authorityKeyIdentifier=keyid\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "srv.pem"), "key": os.path.join(d, "srv.key")}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sim_args(a, certs):
    """ews-sim's options for the backend: none for ews."""
    if a.backend == "ews":
        return []
    n = cloud_count(a)
    args = ["--graph-listen", "127.0.0.1:0",
            "--cloud-mailboxes", "all" if a.backend == "graph" else "1-%d" % n]
    if certs:
        args += ["--tls-cert", certs["cert"], "--tls-key", certs["key"], "--graph-notify-insecure"]
    return args


def config_extra(a, sim, certs):
    """<tls> (notify mode) and the <graph> element for sim; "" for ews."""
    if a.backend == "ews":
        return ""
    info = sim.info
    if a.graph_mode == "notify":
        port = free_port()
        follow = ('<notifications listen="127.0.0.1:%d" url="https://127.0.0.1:%d/graph/notify" '
                  'tls_cert="%s" tls_key="%s"/>' % (port, port, xml_attr(certs["cert"]), xml_attr(certs["key"])))
    else:
        follow = '<delta interval="%ds"/>' % a.graph_interval
    tls = '<tls ca_file="%s"/>' % xml_attr(certs["ca"]) if certs else ""
    return tls + ('<graph tenant="%s" client_id="%s"><secret env="%s"/><endpoints authority="%s" graph="%s"/>'
                  '%s</graph>' % (info["tenant_id"], info["client_id"], SECRET_ENV, xml_attr(info["login"]),
                                  xml_attr(info["graph"]), follow))


# ---- figures ---------------------------------------------------------------------------

COUNTERS = ("graph_requests", "graph_tokens_issued", "graph_batches", "graph_batch_requests", "graph_429",
            "graph_errors", "graph_subscriptions", "graph_validations", "graph_notifications")


def figures(counters):
    """The Graph counters of one /counters snapshot, {name: {label: n}}."""
    return {k: dict(counters.get(k, {})) for k in COUNTERS}


def delta(after, before):
    out = {}
    for name, labels in after.items():
        b = before.get(name, {})
        d = {k: v - b.get(k, 0) for k, v in sorted(labels.items()) if v - b.get(k, 0)}
        out[name] = d
    return out


def total(d, name):
    return sum(d.get(name, {}).values())


def summary(d, n_cloud):
    """What a phase cost on the Graph side: requests by operation (and per cloud mailbox),
    tokens issued, $batch count, 429s, errors, subscriptions, notifications."""
    reqs = d["graph_requests"]
    return {"graph_requests": reqs,
            "graph_requests_per_mailbox": {k: round(v / n_cloud, 3) for k, v in reqs.items()} if n_cloud else {},
            "graph_reads_per_mailbox": round(sum(reqs.get(k, 0) for k in READ_OPS) / n_cloud, 3) if n_cloud else None,
            "graph_tokens_issued": total(d, "graph_tokens_issued"),
            "graph_batches": total(d, "graph_batches"),
            "graph_batch_requests": total(d, "graph_batch_requests"),
            "graph_429": total(d, "graph_429"),
            "graph_errors": d["graph_errors"],
            "graph_subscriptions": d["graph_subscriptions"],
            "graph_notifications_sent": d["graph_notifications"].get("sent", 0)}


def live_subscriptions(counters):
    return counters.get("graph_subscriptions_live", {}).get("total", 0)


def mailboxes_by_backend(api_get_text):
    """{backend: {state: n}} from calsync's /metrics (calsync_mailboxes_by_backend)."""
    text = api_get_text("/metrics") or ""
    out = {}
    for m in re.finditer(r'^calsync_mailboxes_by_backend\{backend="(\w+)",state="(\w+)"\} (\d+)$', text, re.M):
        if int(m.group(3)):
            out.setdefault(m.group(1), {})[m.group(2)] = int(m.group(3))
    return out


# ---- the table -------------------------------------------------------------------------


def fmt_ops(ops, fmt):
    return ", ".join("%s %s" % (k, fmt(v)) for k, v in ops.items()) or "none"


def parameter_text(p, fmt):
    if p.get("backend", "ews") == "ews":
        return ""
    how = "delta every %s s" % fmt(p["graph_interval_s"]) if p["graph_mode"] == "delta" else "notifications"
    return "; %s: %d in Graph (%s)" % (p["backend"], p["cloud_mailboxes"], how)


def initial_rows(i, fmt):
    g = i.get("graph")
    if not g:
        return []
    return [
        ("initial: mailboxes by backend", ", ".join("%s %s" % (b, ", ".join("%s %d" % kv for kv in s.items()))
                                                    for b, s in i["mailboxes_by_backend"].items())),
        ("initial: Graph requests/mailbox", fmt_ops(g["graph_requests_per_mailbox"], fmt)),
        ("initial: Graph reads/mailbox", fmt(g["graph_reads_per_mailbox"])),
        ("initial: Graph tokens issued", fmt(g["graph_tokens_issued"])),
        ("initial: Graph $batch", "%d (%d requests in them)" % (g["graph_batches"], g["graph_batch_requests"])),
        ("initial: Graph 429s", fmt(g["graph_429"])),
        ("initial: Graph errors", ", ".join("%s: %d" % kv for kv in g["graph_errors"].items()) or "none"),
    ] + ([("initial: Graph subscriptions", "%s live" % fmt(i["graph_subscriptions_live"]))]
         if i.get("graph_subscriptions_live") is not None else [])


def steady_rows(s, fmt):
    g = s.get("graph")
    if not g:
        return []
    return [("steady: Graph requests", ", ".join("%s %d" % kv for kv in g["graph_requests"].items()) or "none"),
            ("steady: Graph 429s", fmt(g["graph_429"]))]


def change_rows(c, fmt):
    g = c.get("graph")
    if not g:
        return []
    rows = []
    for side, lat in c.get("latency_by_backend", {}).items():
        rows.append(("changes: %s latency p50/p99/max" % side, "%s / %s / %s s (%d changes)" % (
            fmt(lat["p50_s"]), fmt(lat["p99_s"]), fmt(lat["max_s"]), lat["changes"])))
    rows += [("changes: Graph reads per changed mb", fmt(c.get("graph_reads_per_changed_mailbox"))),
             ("changes: Graph requests", ", ".join("%s %d" % kv for kv in g["graph_requests"].items()) or "none"),
             ("changes: Graph notifications sent", fmt(g["graph_notifications_sent"])),
             ("changes: Graph 429s", fmt(g["graph_429"]))]
    if c.get("graph_burst_reads") is not None:
        rows.append(("changes: burst of 10 -> Graph reads", " ".join(str(x) for x in c["graph_burst_reads"])))
    else:
        rows.append(("changes: burst of 10 -> Graph reads", "- (delta polling: one round per interval)"))
    return rows


def restart_rows(r, fmt):
    g = r.get("graph")
    if not g:
        return []
    return [("restart: Graph requests/mailbox", fmt_ops(g["graph_requests_per_mailbox"], fmt)),
            ("restart: Graph tokens issued", fmt(g["graph_tokens_issued"]))]
