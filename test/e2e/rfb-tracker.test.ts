/// <reference lib="dom" />
/**
 * The RFB tracker between real parts: noVNC 1.7 in headless Chromium ↔ a loopback WebSocket relay
 * that runs every byte through RfbTracker ↔ TigerVNC's Xvnc with a clock that changes the screen
 * every second. Checks that the tracker keeps exact framing over a real session, that noVNC answers
 * the injected fences and stays connected, and that an idle screen settles (every byte sent is
 * confirmed), with the tracker rebuilt from its JSON snapshot before every event. A session with TigerVNC 1.x and noVNC 1.7 carries (seen when this was written): Tight
 * fill, palette and JPEG rectangles, LastRect, VMware cursor, QEMU LED and extended key,
 * ExtendedDesktopSize, Xvnc's own fences, EndOfContinuousUpdates and an extended-clipboard
 * ServerCutText. Needs no edge: run it alone with a config that has no global setup, or in the
 * e2e project (under the e2e lock).
 */
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { build } from "esbuild";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { RfbTracker, type Mode, type RfbTrackerState } from "../../worker/relay/rfb/tracker.ts";
import { launchBrowser } from "../harness/browser.ts";
import { type Proc, start, waitFor } from "../harness/processes.ts";
import { type Desktop, startDesktop } from "../harness/xvnc.ts";

interface Session {
  tracker: RfbTracker;
  consumed: number;
  fencesAnswered: number;
  sentToViewer: number;
  error?: unknown;
}

let desktop: Desktop;
let browser: Browser;
let server: Server;
let port = 0;
let mode: Mode = { viewOnly: true, fenceCredit: true };
let session: Session | undefined;

beforeAll(async () => {
  const bundle = await build({
    stdin: { contents: 'import RFB from "@novnc/novnc"; globalThis.RFB = RFB;', resolveDir: process.cwd() },
    bundle: true,
    format: "esm",
    write: false,
  });
  const script = bundle.outputFiles[0]!.text;
  server = createServer((req, res) => {
    if (req.url === "/rfb.js") res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    else res.writeHead(200, { "content-type": "text/html" }).end('<div id="screen"></div><script type="module" src="/rfb.js"></script>');
  });
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws) => {
    const s: Session = { tracker: new RfbTracker(mode), consumed: 0, fencesAnswered: 0, sentToViewer: 0 };
    session = s;
    const tcp = connect(desktop.port, "127.0.0.1");
    const fail = (e: unknown) => {
      s.error ??= e;
      ws.close();
      tcp.destroy();
    };
    // As if the Durable Object hibernated after every event: the tracker lives only in its snapshot.
    const wake = () => (s.tracker = new RfbTracker(mode, JSON.parse(JSON.stringify(s.tracker.snapshot())) as RfbTrackerState));
    tcp.on("data", (b) => {
      try {
        wake();
        for (const piece of s.tracker.fromServer(new Uint8Array(b))) {
          s.sentToViewer += piece.length;
          ws.send(piece);
        }
        const held = s.tracker.takeHeldForServer();
        if (held) tcp.write(held);
      } catch (e) {
        fail(e);
      }
    });
    ws.on("message", (data: Buffer) => {
      try {
        wake();
        const r = s.tracker.fromViewer(new Uint8Array(data));
        if (r.consumed > 0) s.fencesAnswered++;
        s.consumed += r.consumed;
        if (r.toServer.length > 0) tcp.write(r.toServer);
      } catch (e) {
        fail(e);
      }
    });
    tcp.on("close", () => ws.close());
    tcp.on("error", fail);
    ws.on("close", () => tcp.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
  [desktop, browser] = await Promise.all([startDesktop(640, 480), launchBrowser()]);
}, 60_000);

afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  await Promise.allSettled([browser?.close(), desktop?.stop()]);
});

async function openViewer(viewOnly: boolean): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => "RFB" in window);
  await page.evaluate(
    ({ url, viewOnly }) => {
      const w = window as unknown as { RFB: new (t: Element, u: string) => EventTarget & { viewOnly: boolean }; state: string };
      w.state = "connecting";
      const rfb = new w.RFB(document.getElementById("screen")!, url);
      rfb.viewOnly = viewOnly;
      rfb.addEventListener("connect", () => (w.state = "connected"));
      rfb.addEventListener("disconnect", () => (w.state = "disconnected"));
    },
    { url: `ws://127.0.0.1:${port}/`, viewOnly },
  );
  await page.waitForFunction(() => (window as unknown as { state: string }).state === "connected", undefined, { timeout: 20_000 });
  return page;
}

describe.each([
  { viewOnly: true, fenceCredit: true },
  { viewOnly: false, fenceCredit: true },
])("tracker between noVNC and Xvnc (%o)", (m) => {
  it("keeps exact framing through a changing screen, and an idle screen settles", async () => {
    mode = m;
    session = undefined;
    const page = await openViewer(m.viewOnly);
    let clock: Proc | undefined;
    try {
      clock = start("xclock", ["-display", `:${desktop.display}`, "-update", "1", "-geometry", "200x200+20+20"]);
      const s = await waitFor("a session", async () => session);
      const settled = () =>
        waitFor("the screen to settle", async () => (s.tracker.unconfirmed === 0 && s.sentToViewer > 0 ? s.sentToViewer : undefined), 20_000);
      // Several clock ticks: each one is sent after the screen had settled, and settles again
      // (noVNC answered the fence that followed it).
      let sent = await settled();
      for (let tick = 0; tick < 4; tick++) {
        if (!m.viewOnly) for (let k = 0; k < 10; k++) await page.mouse.move(100 + 10 * k + tick, 100 + 5 * k);
        await waitFor("a screen change", async () => (s.sentToViewer > sent ? true : undefined), 20_000);
        sent = await settled();
      }
      await clock.stop();
      clock = undefined;
      await settled();
      expect(s.error).toBeUndefined();
      expect(s.tracker.framing).toBe("exact");
      expect(s.tracker.handshakeDone).toBe(true);
      expect(s.consumed).toBe(s.sentToViewer);
      expect(await page.evaluate(() => (window as unknown as { state: string }).state)).toBe("connected");
    } finally {
      await clock?.stop();
      await page.close();
    }
  }, 90_000);
});
