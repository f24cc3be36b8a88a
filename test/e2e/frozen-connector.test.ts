/**
 * Issue #23 item 9 with real processes: of a site's two connectors, one is frozen (SIGSTOP: its
 * TCP connection stays up, it answers nothing). New consoles must all open through the other;
 * those first offered to the frozen one move once their OPEN goes unacknowledged (OPEN_ACK), and
 * the frozen one, woken, drops them rather than opening them a second time.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient } from "../harness/api.ts";
import { labConfig, type RunningConnector, startConnector } from "../harness/connector.ts";
import { waitFor } from "../harness/processes.ts";
import { RfbClient } from "../harness/rfb-client.ts";

const edge = inject("edge");
const desktop = inject("desktop");
const SITE = "e2e-frozen";
const api = new ApiClient(edge.url);
let live: RunningConnector;
let frozen: RunningConnector;

beforeAll(async () => {
  await api.signIn(edge.username, edge.password);
  const token = await api.createSite(SITE);
  const config = labConfig(edge.url, token, [{ id: "desk", name: "Desktop", port: desktop.port }]);
  live = await startConnector(config);
  frozen = await startConnector(config);
});

afterAll(async () => {
  frozen?.proc.child.kill("SIGCONT");
  await Promise.allSettled([live?.stop(), frozen?.stop()]);
});

describe("a frozen connector", () => {
  it("gets no console for good: every new console opens through the live one", async () => {
    frozen.proc.child.kill("SIGSTOP");
    const consoles = 8;
    const clients = await Promise.all(
      Array.from({ length: consoles }, async () => {
        const client = await RfbClient.open((await api.openConsole(SITE, "lab", "desk")).wsUrl);
        expect((await client.handshake()).width).toBe(desktop.width);
        return client;
      }),
    );
    expect((await live.metrics()).porthole_connector_streams).toBe(consoles);
    // Woken, the frozen connector reads the OPENs it missed and the CLOSEs that followed them:
    // it opens nothing (or closes what it began), and takes new consoles again.
    frozen.proc.child.kill("SIGCONT");
    await waitFor("the woken connector idle", async () => ((await frozen.metrics()).porthole_connector_streams === 0 ? true : undefined), 20_000);
    for (const c of clients) c.close();
  }, 90_000);
});
