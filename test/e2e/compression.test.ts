/**
 * permessage-deflate is the edge's choice per kind of socket, whatever the client offers: browsers
 * always offer it (so does Node's `ws`), and console streams are mostly compressed already. Off by
 * default for console sockets and connector tunnels; VIEWER_WS_COMPRESSION / CONNECTOR_WS_COMPRESSION
 * = on accept the offer. Checked on real `wrangler dev` edges with a client that offers deflate.
 */
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient } from "../harness/api.ts";
import { labConfig, type RunningConnector, startConnector } from "../harness/connector.ts";
import { type Edge, startEdge } from "../harness/edge.ts";
import { RfbClient } from "../harness/rfb-client.ts";

const shared = inject("edge");
const desktop = inject("desktop");
let own: Edge;
const connectors: RunningConnector[] = [];
const tokens = new Map<string, string>();

async function site(edge: { url: string; username: string; password: string }, name: string): Promise<ApiClient> {
  const api = new ApiClient(edge.url);
  await api.signIn(edge.username, edge.password);
  const token = await api.createSite(name);
  tokens.set(`${edge.url} ${name}`, token);
  connectors.push(await startConnector(labConfig(edge.url, token, [{ id: "desk", name: "Desktop", port: desktop.port }])));
  await api.waitForVms(name);
  return api;
}

/** A viewer offering permessage-deflate (ws's default offer, as a browser's): what it got, and the console works. */
async function viewer(api: ApiClient, name: string): Promise<string> {
  const { wsUrl } = await api.openConsole(name, "lab", "desk");
  const rfb = await RfbClient.open(wsUrl);
  const agreed = rfb.ws.extensions;
  const init = await rfb.handshake();
  expect([init.width, init.height]).toEqual([desktop.width, desktop.height]);
  rfb.ws.close();
  return agreed;
}

/** A socket on /connect offering permessage-deflate: what the edge agreed to. */
async function tunnel(edgeUrl: string, name: string): Promise<string> {
  const ws = new WebSocket(`${edgeUrl.replace(/^http/, "ws")}/connect`, {
    headers: { Authorization: `Bearer ${tokens.get(`${edgeUrl} ${name}`)}` },
    perMessageDeflate: true,
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const agreed = ws.extensions;
  ws.terminate();
  return agreed;
}

beforeAll(async () => {
  own = await startEdge({ vars: { VIEWER_WS_COMPRESSION: "on", CONNECTOR_WS_COMPRESSION: "on" } });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(connectors.map((c) => c.stop()));
  await own?.stop();
});

describe("permessage-deflate", () => {
  it("is refused by default on console sockets and connector tunnels, though offered", async () => {
    const api = await site(shared, "e2e-deflate-off");
    expect(await viewer(api, "e2e-deflate-off")).toBe("");
    expect(await tunnel(shared.url, "e2e-deflate-off")).toBe("");
  });

  it("is accepted when the edge's vars turn it on, and the console's bytes arrive intact", async () => {
    const api = await site(own, "e2e-deflate-on");
    expect(await viewer(api, "e2e-deflate-on")).toMatch(/^permessage-deflate/);
    expect(await tunnel(own.url, "e2e-deflate-on")).toMatch(/^permessage-deflate/);
  });
});
