/**
 * The connector never leaves a VNC server with half-done handshakes, whatever the viewers do
 * (issue #23, items 6 and 7), against a real TigerVNC: it marks an address for every connection
 * that closes before authentication and refuses it ("Connections: blacklisted") after five, which
 * took every console of that server down with it.
 *
 * Each test starts its own Xvnc (it freezes it or would get it blacklisted) and its own connector,
 * on this file's site. Nothing here waits on a clock: each step waits for an event, with generous
 * deadlines.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { ApiClient } from "../harness/api.ts";
import { labConfig, type RunningConnector, startConnector } from "../harness/connector.ts";
import { waitFor } from "../harness/processes.ts";
import { RfbClient } from "../harness/rfb-client.ts";
import { type Desktop, startDesktop } from "../harness/xvnc.ts";

const edge = inject("edge");
const SITE = "e2e-handshakes";
const api = new ApiClient(edge.url);
let token = "";
let desktop: Desktop;
let connector: RunningConnector;

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern.source, "g"))?.length ?? 0;
const consoleUrl = async () => (await api.openConsole(SITE, "lab", "desk")).wsUrl;

/** Every connection Xvnc accepted is closed again: nothing is left half done on the server. */
async function serverQuiet(): Promise<void> {
  await waitFor(
    "every connection to Xvnc closed",
    async () => {
      const log = desktop.log();
      return count(log, /Connections: accepted/) === count(log, /Connections: closed/) ? true : undefined;
    },
    90_000,
  );
}

/** What TigerVNC said about the connector's address, for failure messages. */
const serverSaid = () =>
  desktop
    .log()
    .split("\n")
    .filter((l) => /blacklisted|Too many/.test(l))
    .slice(0, 3)
    .join("\n");

/** Consoles that open after whatever came before, one after the other, and complete the handshake. */
async function nextConsolesWork(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) {
    const rfb = await RfbClient.open(await consoleUrl());
    const init = await rfb.handshake().catch((err: Error) => {
      throw new Error(`${err.message}; Xvnc logged:\n${serverSaid()}`);
    });
    expect(init.name).toBe("hygiene");
    rfb.close();
  }
  expect(serverSaid()).toBe("");
}

beforeAll(async () => {
  await api.signIn(edge.username, edge.password);
  token = await api.createSite(SITE);
});

beforeEach(async () => {
  desktop = await startDesktop(320, 200, { name: "hygiene" });
  connector = await startConnector(labConfig(edge.url, token, [{ id: "desk", name: "Desk", port: desktop.port }]));
});

afterEach(async () => {
  await Promise.allSettled([connector?.stop(), desktop?.stop()]);
});

describe("viewers that leave or stall mid-handshake", () => {
  it("ten viewers dropped at every step of the handshake leave the server's next consoles working", async () => {
    // A page closed early, a flaky network: each viewer leaves at another point of the handshake.
    const leave = async (i: number) => {
      const rfb = await RfbClient.open(await consoleUrl());
      const step = i % 5;
      if (step > 0) await rfb.reader.read(12);
      if (step > 1) rfb.ws.send(Buffer.from("RFB 003.008\n"));
      if (step > 2) await rfb.reader.read((await rfb.reader.read(1))[0]!); // the security types
      if (step > 3) rfb.ws.send(Buffer.from([1])); // None
      if (i % 2) rfb.ws.terminate();
      else rfb.close();
    };
    await Promise.all(Array.from({ length: 10 }, (_, i) => leave(i)));
    await waitFor(
      "the connector is done with the ten consoles",
      async () => (count(connector.proc.output(), /"event":"console.closed"/) >= 10 ? true : undefined),
      60_000,
    );
    await serverQuiet();
    await nextConsolesWork();
    // The connector took over the handshakes the viewers left and finished them (security type None).
    expect(connector.proc.output()).toMatch(/"event":"console.handshake_finished".*"outcome":"finished"/);
    expect(connector.proc.output()).not.toMatch(/"outcome":"(abandoned|timeout)"/);
  });

  it("a frozen, then thawed server has not blacklisted the connector", { timeout: 300_000 }, async () => {
    await nextConsolesWork(1);
    desktop.freeze();
    // Four viewers keep trying, as pages that reconnect do, until eight of their consoles failed.
    let failed = 0;
    const attempt = async () => {
      const rfb = await RfbClient.open(await consoleUrl());
      await rfb.handshake().catch(() => {});
      const closed = await rfb.closed(120_000);
      if (closed.code !== 1000 && closed.code !== 1005) failed++;
    };
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (failed < 8) await attempt();
      }),
    );
    desktop.thaw();
    await serverQuiet();
    await nextConsolesWork();
    // The connections that waited on the frozen server were finished once it woke, not dropped.
    expect(connector.proc.output()).toMatch(/"event":"console.handshake_finished".*"outcome":"finished"/);
  });

  it("two silent viewers do not delay a normal console, and are closed after a bounded silence", { timeout: 180_000 }, async () => {
    // First on a server the connector meets for the first time, then on one whose greeting it knows.
    for (const round of ["first meeting", "greeting known"]) {
      const silent = await Promise.all(
        [0, 1].map(async () => {
          const rfb = await RfbClient.open(await consoleUrl());
          await rfb.reader.read(12); // the greeting, never answered
          return rfb;
        }),
      );
      const rfb = await RfbClient.open(await consoleUrl());
      expect((await rfb.handshake()).name, round).toBe("hygiene");
      rfb.close();
      // The normal console got through while both silent viewers were still there, saying nothing.
      expect(silent.map((s) => s.reader.closed), round).toEqual([null, null]);
      for (const s of silent) {
        const closed = await s.closed(60_000);
        expect(closed.code, round).toBe(CloseCode.tooSlow);
        expect(closed.reason, round).toMatch(/said nothing/);
      }
      await serverQuiet();
    }
    await nextConsolesWork(1);
    expect(connector.proc.output()).not.toMatch(/"outcome":"(abandoned|timeout)"/);
  });
});
