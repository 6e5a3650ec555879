"""Microsoft's Graph client for JavaScript (@microsoft/microsoft-graph-client, from the npm
registry, installed into tests/graphsim/js by `npm ci`) reads a calendarView with
PageIterator, a calendarView/delta round and a $batch from the simulator over HTTPS
(NODE_EXTRA_CA_CERTS names the test CA)."""

import json
import os
import shutil
import subprocess

import pytest

import graphclient as gc
from graphclient import A

JS = os.path.join(os.path.dirname(__file__), "js")


def node_modules():
    """Install the locked packages unless they are there (scripts/install-deps does the same)."""
    if os.path.isdir(os.path.join(JS, "node_modules", "@microsoft", "microsoft-graph-client")):
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: run scripts/install-deps")
    p = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", JS],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.fixture(scope="module")
def jsim(module_sim_factory, certs):
    node_modules()
    return gc.graph_sim(module_sim_factory, tls=certs)


def test_graph_client_for_javascript(jsim, certs):
    ctx = gc.ssl_ctx(jsim, certs["ca"])
    g = gc.Graph(jsim, ctx=ctx)
    start, end = "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"
    env = dict(os.environ, NODE_EXTRA_CA_CERTS=certs["ca"], GRAPH_HOST=jsim.info["login"], GRAPH_TOKEN=g.tok,
               GRAPH_USER=A, GRAPH_START=start, GRAPH_END=end, NODE_PATH=os.path.join(JS, "node_modules"))
    p = subprocess.run(["node", os.path.join(JS, "graph-client.js")], env=env, cwd=JS, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    view, _ = g.all_pages("users/%s/calendarView?startDateTime=%s&endDateTime=%s" % (A, start, end))
    assert out["viewIds"] == [e["id"] for e in view] and len(view) > 6
    assert sorted(out["deltaIds"]) == sorted(e["id"] for e in view)
    assert out["pages"] >= 3 and "$deltatoken=" in out["deltaLink"] and out["again"] == 0
    assert out["batch"]["1"]["status"] == 200 and out["batch"]["1"]["body"]["mail"] == A
    assert out["batch"]["2"]["status"] == 200 and len(out["batch"]["2"]["body"]["value"]) == 2
    assert out["batch"]["3"]["status"] == 404
    assert out["error"] == {"statusCode": 400, "code": "ErrorInvalidParameter"}
    c = jsim.counters()
    assert c["graph_batches"][""] >= 1 and c["graph_requests"]["calendarView.delta"] >= 3
