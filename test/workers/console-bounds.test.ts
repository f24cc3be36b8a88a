/**
 * Every console has an end a person can understand: an open the connector never answers, a
 * viewer that closes, a link or user with too many consoles, a client speaking websockify's
 * `binary` subprotocol, and consoles that were open when the edge restarted.
 */
import { env, evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeData, encodeJson, encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import { BINARY_SUBPROTOCOL, CREDIT_SUBPROTOCOL, OPEN_TIMEOUT_MS, RFB_HANDSHAKE_TIMEOUT_MS } from "../../shared/protocol/limits.ts";
import { auditUntil, call, createSite, INVENTORY, openBrowser, openConsole, rfbHandshake, signIn, welcomedConnector } from "./helpers.ts";
import { later } from "./clock.ts";

let n = 0;
async function site() {
  const cookie = await signIn();
  const name = `bounds${++n}`;
  const connector = await welcomedConnector(await createSite(cookie, name));
  return { cookie, name, connector, stub: env.SITE.get(env.SITE.idFromName(name)) };
}

describe("consoles that end with a reason", () => {
  it("an OPEN the connector never answers ends with 4504 at its deadline", async () => {
    const s = await site();
    const browser = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    expect((await s.connector.nextFrame()).type).toBe(FrameType.open);
    // Nothing answers the OPEN, though the connector keeps talking (else it would be dropped as
    // silent). Before the deadline the console waits; after it, it is closed and the connector told.
    const alive = async () => {
      s.connector.send(encodeJson(FrameType.inventory, 0, { hypervisors: INVENTORY }));
      await call("GET", `/api/sites/${s.name}/vms`, undefined, s.cookie);
      return runDurableObjectAlarm(s.stub);
    };
    await later(OPEN_TIMEOUT_MS - 5_000, alive);
    expect(browser.closed).toBeNull();
    await later(OPEN_TIMEOUT_MS + 1_000, alive);
    const closed = await browser.closedWith();
    expect(closed.code).toBe(CloseCode.upstreamTimeout);
    expect(closed.reason).toMatch(/did not open the console in time/);
    let f;
    do f = await s.connector.nextFrame();
    while (f.type !== FrameType.close);
    expect(f).toMatchObject({ type: FrameType.close, code: CloseCode.upstreamTimeout });
  });

  it("idle timeout: a full-control console with no input is warned a minute before and then closed", async () => {
    const s = await site();
    const viewer = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl, CREDIT_SUBPROTOCOL);
    const open = await s.connector.nextFrame();
    s.connector.send(encodeOpenOk(open.stream));
    await rfbHandshake(s.connector, open.stream, viewer);
    const key = Uint8Array.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
    const idleMs = 600_000; // IDLE_TIMEOUT_SECONDS in vitest.workers.config.ts
    const alive = async () => {
      s.connector.send(encodeJson(FrameType.inventory, 0, { hypervisors: INVENTORY }));
      await call("GET", `/api/sites/${s.name}/vms`, undefined, s.cookie);
    };
    // 9 min 5 s without input: the page is told when the console will close.
    await later(idleMs - 55_000, async () => {
      await alive();
      await runDurableObjectAlarm(s.stub);
    });
    const warning = JSON.parse((await viewer.next()) as string) as { type: string; closesAt: string };
    expect(warning.type).toBe("idle-warning");
    // A key press at that moment starts the count again: at 10 min 5 s nothing happens…
    await later(idleMs - 55_000, async () => {
      viewer.ws.send(key);
      expect(await s.connector.nextFrame()).toMatchObject({ type: FrameType.data, stream: open.stream });
    });
    await later(idleMs + 5_000, async () => {
      await alive();
      await runDurableObjectAlarm(s.stub);
    });
    expect(viewer.closed).toBeNull();
    // …and 10 min after that key press it closes, for good, with the reason.
    await later(2 * idleMs, async () => {
      await alive();
      await runDurableObjectAlarm(s.stub);
    });
    const closed = await viewer.closedWith();
    expect(closed).toEqual({ code: CloseCode.idle, reason: "This console closed after 10 min without input." });
  });

  it("idle timeout: view-only consoles are never closed for want of input", async () => {
    const s = await site();
    const res = await call("POST", "/api/links", { site: s.name, hypervisor: "lab", vm: "desk", ttlSeconds: 3600 }, s.cookie);
    const viewer = await openBrowser(((await res.json()) as { wsUrl: string }).wsUrl, CREDIT_SUBPROTOCOL);
    const open = await s.connector.nextFrame();
    s.connector.send(encodeOpenOk(open.stream));
    await rfbHandshake(s.connector, open.stream, viewer);
    await later(2 * 600_000, async () => {
      s.connector.send(encodeJson(FrameType.inventory, 0, { hypervisors: INVENTORY }));
      await call("GET", `/api/sites/${s.name}/vms`, undefined, s.cookie);
      await runDurableObjectAlarm(s.stub);
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(viewer.closed).toBeNull();
    expect(viewer.pending()).toBe(0);
  });

  it("a console whose RFB handshake never finishes ends 60 s after it opened, freeing the VNC server", async () => {
    const s = await site();
    const viewer = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    const open = await s.connector.nextFrame();
    s.connector.send(encodeOpenOk(open.stream));
    // The server greets; the viewer never answers (an abandoned handshake holds a VNC server slot).
    s.connector.send(encodeData(open.stream, new TextEncoder().encode("RFB 003.008\n")));
    await viewer.next();
    const alive = async () => {
      s.connector.send(encodeJson(FrameType.inventory, 0, { hypervisors: INVENTORY }));
      await call("GET", `/api/sites/${s.name}/vms`, undefined, s.cookie);
      return runDurableObjectAlarm(s.stub);
    };
    await later(RFB_HANDSHAKE_TIMEOUT_MS - 5_000, alive);
    expect(viewer.closed).toBeNull();
    await later(RFB_HANDSHAKE_TIMEOUT_MS + 1_000, alive);
    const closed = await viewer.closedWith();
    expect(closed.code).toBe(CloseCode.upstreamTimeout);
    expect(closed.reason).toMatch(/did not finish its RFB handshake/);
    let f;
    do f = await s.connector.nextFrame();
    while (f.type !== FrameType.close);
    expect(f).toMatchObject({ stream: open.stream, code: CloseCode.upstreamTimeout });
  });

  it("a connector that sends a plain viewer more than its window loses the stream", async () => {
    const s = await site();
    const viewer = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    const open = await s.connector.nextFrame();
    s.connector.send(encodeOpenOk(open.stream));
    await rfbHandshake(s.connector, open.stream, viewer);
    viewer.ws.send(Uint8Array.from([2, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xfe, 0xc8])); // SetEncodings: Raw, Fence
    // Empty updates, 32 KiB at a time, far past the window and with no fence answered.
    for (let i = 0; i < 24; i++) s.connector.send(encodeData(open.stream, new Uint8Array(32 * 1024)));
    const closed = await viewer.closedWith();
    expect(closed.code).toBe(CloseCode.internal);
    expect(closed.reason).toMatch(/overran the stream window/);
  });

  it("answers a viewer's close frame at once", async () => {
    const s = await site();
    const browser = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    const open = await s.connector.nextFrame();
    s.connector.send(encodeOpenOk(open.stream));
    browser.ws.close(1000, "bye");
    // The close handshake completes only when the edge answers.
    expect((await browser.closedWith(3000)).code).toBe(1000);
    expect(await s.connector.nextFrame()).toMatchObject({ type: FrameType.close, stream: open.stream });
  });

  it("selects `binary` for clients that offer only websockify's subprotocol, and ours when offered", async () => {
    const s = await site();
    const plain = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl, BINARY_SUBPROTOCOL);
    expect(plain.protocol).toBe(BINARY_SUBPROTOCOL);
    const both = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl, `${BINARY_SUBPROTOCOL}, ${CREDIT_SUBPROTOCOL}`);
    expect(both.protocol).toBe(CREDIT_SUBPROTOCOL);
  });

  it("a share link opens at most MAX_CONSOLES_PER_LINK consoles at once (default 10)", async () => {
    const s = await site();
    const res = await call("POST", "/api/links", { site: s.name, hypervisor: "lab", vm: "desk", ttlSeconds: 600 }, s.cookie);
    const { wsUrl } = (await res.json()) as { wsUrl: string };
    const viewers = [];
    for (let i = 0; i < 10; i++) viewers.push(await openBrowser(wsUrl));
    const refused = await openBrowser(wsUrl);
    const closed = await refused.closedWith();
    expect(closed.code).toBe(CloseCode.tooMuchInput);
    expect(closed.reason).toMatch(/already has 10 consoles open/);
    // One leaves: there is room again.
    viewers[0]!.ws.close(1000, "done");
    await viewers[0]!.closedWith();
    const again = await openBrowser(wsUrl);
    await new Promise((r) => setTimeout(r, 50));
    expect(again.closed).toBeNull();
  });

  it("consoles open when the edge restarted get their console.closed audit row", async () => {
    const s = await site();
    const browser = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    const open = await s.connector.nextFrame();
    s.connector.send(encodeOpenOk(open.stream));
    // A restart: every socket is closed without an event reaching the object.
    await evictDurableObject(s.stub, { webSockets: "close" });
    await browser.closedWith();
    // The next request wakes the object, which notices what storage remembers and no socket carries.
    await call("GET", `/api/sites/${s.name}/vms`, undefined, s.cookie);
    const row = await auditUntil(s.cookie, `?type=console.closed&site=${s.name}`, (rows) => rows.find((r) => r.detail?.stream === open.stream));
    expect(row.detail?.reason).toMatch(/connector went offline|edge restarted/);
  });
});
