// Microsoft's Graph client for JavaScript against the Graph simulator: a calendarView read
// with PageIterator, a calendarView/delta round followed to its deltaLink, and a $batch
// made with BatchRequestContent. Run by tests/graphsim/test_graph_js.py, which passes:
//   GRAPH_HOST   https://127.0.0.1:PORT (the simulator's Graph listener)
//   GRAPH_TOKEN  an access token from the simulator's token endpoint
//   GRAPH_USER   the mailbox to read
//   GRAPH_START, GRAPH_END  the calendarView window
// and NODE_EXTRA_CA_CERTS (the test CA). Prints one JSON object with what it read.
"use strict";

const { Client, PageIterator, BatchRequestContent, BatchResponseContent } = require("@microsoft/microsoft-graph-client");

async function main() {
  const host = process.env.GRAPH_HOST;
  const user = process.env.GRAPH_USER;
  const window = { startDateTime: process.env.GRAPH_START, endDateTime: process.env.GRAPH_END };
  const client = Client.initWithMiddleware({
    authProvider: { getAccessToken: async () => process.env.GRAPH_TOKEN },
    baseUrl: host + "/",
    // The auth middleware adds the token only for Graph's own hosts and these.
    customHosts: new Set([new URL(host).hostname]),
  });
  const prefer = { headers: { Prefer: "odata.maxpagesize=3" } };

  // calendarView, every page through PageIterator.
  const first = await client.api(`/users/${user}/calendarView`).query(window)
    .header("Prefer", "odata.maxpagesize=3").get();
  const viewIds = [];
  const iterator = new PageIterator(client, first, (event) => { viewIds.push(event.id); return true; }, prefer);
  await iterator.iterate();

  // calendarView/delta: follow nextLinks to the deltaLink.
  let page = await client.api(`/users/${user}/calendarView/delta`).query(window).get();
  const deltaIds = [];
  let pages = 1;
  while (page["@odata.nextLink"]) {
    page = await client.api(page["@odata.nextLink"]).get();
    pages += 1;
    for (const e of page.value) deltaIds.push(e.id);
  }
  const deltaLink = page["@odata.deltaLink"];
  const again = await client.api(deltaLink).get();

  // $batch
  const content = new BatchRequestContent([
    { id: "1", request: new Request(`${host}/v1.0/users/${user}`, { method: "GET" }) },
    { id: "2", request: new Request(`${host}/v1.0/users/${user}/calendarView?startDateTime=${window.startDateTime}`
      + `&endDateTime=${window.endDateTime}&$top=2`, { method: "GET" }) },
    { id: "3", request: new Request(`${host}/v1.0/users/nobody@contoso.example`, { method: "GET" }) },
  ]);
  const raw = await client.api("/$batch").post(await content.getContent());
  const responses = new BatchResponseContent(raw).getResponses();
  const batch = {};
  for (const [id, r] of responses) {
    batch[id] = { status: r.status, body: await r.json() };
  }
  let error = null;
  try {
    await client.api(`/users/${user}/calendarView`).get();
  } catch (e) {
    error = { statusCode: e.statusCode, code: e.code };
  }
  process.stdout.write(JSON.stringify({ viewIds, deltaIds, pages, deltaLink, again: again.value.length,
    batch, error }) + "\n");
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
