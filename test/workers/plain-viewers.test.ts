/**
 * Plain RFB viewers (no credit subprotocol) cannot be seen reading: the edge holds them to what
 * they prove with the RFB fences it inserts, whatever they send, and a view-only filter resumes
 * mid-message after hibernation.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeData, encodeOpenOk, type Frame, FrameType } from "../../shared/protocol/frames.ts";
import { PLAIN_UNPROVEN_LIMIT_BYTES, STREAM_WINDOW_BYTES } from "../../shared/protocol/limits.ts";
import { hibernate } from "./hibernate.ts";
import { FENCE_TAG } from "../../worker/relay/rfb/tracker.ts";
import { call, createSite, openBrowser, rfbHandshake, signIn, type TestConnector, type TestSocket, welcomedConnector } from "./helpers.ts";

let n = 0;
async function linkConsole(viewOnly: boolean) {
  const cookie = await signIn();
  const site = `plain${++n}`;
  const connector = await welcomedConnector(await createSite(cookie, site));
  const link = (await (await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", viewOnly }, cookie)).json()) as { wsUrl: string };
  const viewer = await openBrowser(link.wsUrl);
  const open = await connector.nextFrame();
  connector.send(encodeOpenOk(open.stream));
  await rfbHandshake(connector, open.stream, viewer);
  return { connector, viewer, stream: open.stream, stub: env.SITE.get(env.SITE.idFromName(site)) };
}

const u16 = (v: number) => [v >> 8, v & 0xff];
const s32 = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const setEncodings = (encs: number[]) => Uint8Array.from([2, 0, ...u16(encs.length), ...encs.flatMap(s32)]);
const fbur = Uint8Array.from([3, 1, ...u16(0), ...u16(0), ...u16(800), ...u16(600)]);

/** A FramebufferUpdate with one Raw rectangle of `pixels` 32-bit pixels. */
function rawUpdate(pixels: number): Uint8Array {
  const head = [0, 0, ...u16(1), ...u16(0), ...u16(0), ...u16(pixels), ...u16(1), ...s32(0)];
  const out = new Uint8Array(head.length + pixels * 4);
  out.set(head);
  return out;
}

/** Every CREDIT the connector got, summed, once the edge has been quiet for a moment. */
async function creditSoFar(connector: TestConnector, stream: number, seen: Frame[] = []): Promise<number> {
  for (;;) {
    const f = await connector.nextFrame(300).catch(() => null);
    if (!f) break;
    seen.push(f);
  }
  return seen.filter((f) => f.type === FrameType.credit && f.stream === stream).reduce((t, f) => t + (f as { bytes: number }).bytes, 0);
}

/** Reads what reached the viewer and answers the edge's fences (ServerFence 248 with our flags). */
async function drain(viewer: TestSocket, answer: boolean, idleMs = 300): Promise<{ bytes: number; fences: Uint8Array[] }> {
  let bytes = 0;
  const fences: Uint8Array[] = [];
  for (;;) {
    const m = await viewer.next(idleMs).catch(() => null);
    if (!m) break;
    const b = new Uint8Array(m as ArrayBuffer);
    bytes += b.length;
    // Our fences (ServerFence, Request only, 8-byte payload with the tag) travel inside the
    // console's messages, at RFB message boundaries; the test's pixels are zeros, so a scan finds them.
    for (let at = 0; at + 17 <= b.length; at++) {
      if (b[at] === 248 && b[at + 4] === 0x80 && b[at + 8] === 8 && FENCE_TAG.every((v, k) => b[at + 9 + k] === v)) {
        fences.push(b.slice(at, at + 17));
        at += 16;
      }
    }
  }
  if (answer) {
    for (const f of fences) {
      const reply = f.slice();
      reply[4] = 0; // the Request flag cleared, the payload echoed
      viewer.ws.send(reply);
    }
  }
  return { bytes, fences };
}

describe("plain viewers are held to what they prove", () => {
  it("a viewer that asks for updates but never processes them gets no more than a window from the connector", async () => {
    const { connector, viewer, stream } = await linkConsole(true);
    viewer.ws.send(setEncodings([0, -312])); // Raw, Fence
    for (let i = 0; i < 20; i++) viewer.ws.send(fbur); // asks, and asks again
    // All the connector may send: its window, less the handshake it already sent.
    const update = rawUpdate(16 * 1024 - 8); // just under 64 KiB each
    for (let sent = 0; sent + update.length < STREAM_WINDOW_BYTES - 64; sent += update.length) {
      for (let at = 0; at < update.length; at += 32 * 1024) connector.send(encodeData(stream, update.subarray(at, at + 32 * 1024)));
    }
    const { fences } = await drain(viewer, false);
    expect(fences.length).toBeGreaterThan(0);
    // Without an answer to a fence nothing is proven: the connector may not send past its window.
    expect(await creditSoFar(connector, stream)).toBe(0);
    // More update requests prove nothing either.
    for (let i = 0; i < 20; i++) viewer.ws.send(fbur);
    expect(await creditSoFar(connector, stream)).toBe(0);
    expect(viewer.closed).toBeNull();
  });

  it("answering the fences returns the credit, and the console goes on", async () => {
    const { connector, viewer, stream } = await linkConsole(false);
    viewer.ws.send(setEncodings([0, -312]));
    await connector.nextFrame(); // the SetEncodings reaches the console
    const update = rawUpdate(16 * 1024 - 8); // just under 64 KiB: 7 fit in a window with the handshake
    const handshake = 12 + 2 + 4 + 28; // the server's side of rfbHandshake
    const sendUpdates = (count: number) => {
      for (let i = 0; i < count; i++) for (let at = 0; at < update.length; at += 32 * 1024) connector.send(encodeData(stream, update.subarray(at, at + 32 * 1024)));
    };
    sendUpdates(7);
    const first = await drain(viewer, true);
    expect(first.bytes).toBeGreaterThanOrEqual(7 * update.length);
    const seen: Frame[] = [];
    // Everything before the last answered fence is proven: the handshake and the seven updates.
    expect(await creditSoFar(connector, stream, seen)).toBe(handshake + 7 * update.length);
    // The fence answers never reach the VNC server.
    expect(seen.filter((f) => f.type === FrameType.data)).toEqual([]);
    sendUpdates(7);
    await drain(viewer, true);
    expect(await creditSoFar(connector, stream)).toBe(7 * update.length);
    expect(viewer.closed).toBeNull();
  });

  it("one update larger than the window still flows (a 4K Raw screen cannot be fenced until it ends)", async () => {
    const { connector, viewer, stream } = await linkConsole(true);
    viewer.ws.send(setEncodings([0, -312]));
    const big = rawUpdate(600 * 1024); // 2.4 MB in one FramebufferUpdate
    let sent = 0;
    let credit = STREAM_WINDOW_BYTES - 64;
    let received = 0;
    while (sent < big.length) {
      while (credit > 0 && sent < big.length) {
        const n = Math.min(32 * 1024, credit, big.length - sent);
        connector.send(encodeData(stream, big.subarray(sent, sent + n)));
        sent += n;
        credit -= n;
      }
      received += (await drain(viewer, true, 50)).bytes;
      let f;
      do f = await connector.nextFrame(2000);
      while (f.type !== FrameType.credit); // (the viewer's SetEncodings goes up as DATA)
      credit += f.bytes;
    }
    received += (await drain(viewer, true)).bytes;
    expect(received).toBeGreaterThanOrEqual(big.length);
    expect(viewer.closed).toBeNull();
  }, 60_000);

  it("a viewer that cannot prove anything (no fences) is cut at the stated limit, with the reason", async () => {
    const { connector, viewer, stream } = await linkConsole(true);
    const empty = new Uint8Array(32 * 1024); // 8,192 empty FramebufferUpdates: valid RFB
    let sent = 0;
    let credit = STREAM_WINDOW_BYTES;
    while (!viewer.closed && sent < PLAIN_UNPROVEN_LIMIT_BYTES + STREAM_WINDOW_BYTES) {
      while (credit >= empty.length && sent < PLAIN_UNPROVEN_LIMIT_BYTES + STREAM_WINDOW_BYTES) {
        connector.send(encodeData(stream, empty));
        sent += empty.length;
        credit -= empty.length;
      }
      const f = await connector.nextFrame(2000).catch(() => null);
      if (f?.type === FrameType.credit) credit += f.bytes;
      else if (!f || f.type === FrameType.close) break;
      while (viewer.pending() > 0) await viewer.next();
    }
    const closed = await viewer.closedWith();
    expect(closed.code).toBe(CloseCode.tooSlow);
    expect(closed.reason).toMatch(/cannot confirm what it received/);
    expect(sent).toBeGreaterThan(PLAIN_UNPROVEN_LIMIT_BYTES - STREAM_WINDOW_BYTES);
  }, 60_000);

  it("a view-only filter resumes mid-message after the object hibernated", async () => {
    const { connector, viewer, stub } = await linkConsole(true);
    const key = [4, 1, 0, 0, 0, 0, 0, 0x61];
    viewer.ws.send(Uint8Array.from(key.slice(0, 3))); // half a KeyEvent
    await hibernate(stub);
    viewer.ws.send(Uint8Array.from([...key.slice(3), ...fbur])); // its rest, then an update request
    const forwarded: number[] = [];
    for (;;) {
      const f = await connector.nextFrame(400).catch(() => null);
      if (!f) break;
      if (f.type === FrameType.data) forwarded.push(...f.bytes);
    }
    // Only the update request: the key was dropped whole, across the wake.
    expect(forwarded).toEqual([...fbur]);
    expect(viewer.closed).toBeNull();
  });
});
