/**
 * Issue #23 item 9 with real processes: of a site's two connectors, one is frozen (SIGSTOP: its
 * TCP connection stays up, it answers nothing). New consoles must all open through the other;
 * those first offered to the frozen one move once their OPEN goes unacknowledged (OPEN_ACK), and
 * the frozen one, woken, drops them rather than opening them a second time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { e2eSite } from "../harness/e2e-site.ts";
import type { RunningConnector } from "../harness/connector.ts";
import { waitFor } from "../harness/processes.ts";
import { RfbClient } from "../harness/rfb-client.ts";

const site = e2eSite("e2e-frozen", { lab: () => [{ id: "desk", name: "Desktop", port: site.desktop.port }] });
const { desktop, api, name: SITE } = site;
let live: RunningConnector;
let frozen: RunningConnector;

beforeAll(async () => {
  live = site.connector;
  frozen = await site.startConnector();
});

afterAll(() => {
  frozen?.proc.child.kill("SIGCONT");
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
