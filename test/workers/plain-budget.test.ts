/**
 * Issue #23 item 10: plain viewers that cannot prove they read (no fences), several at once on one
 * site object. workerd queues whatever is sent to a viewer that does not read, and its close
 * behind that: what the edge sends them unproven is what the object may hold. The bounds are
 * asserted on bytes (what the viewers were sent, the edge's own ledger), never on time.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeData, encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import { STREAM_WINDOW_BYTES } from "../../shared/protocol/limits.ts";
import type { UnprovenLedger } from "../../worker/relay/unproven-ledger.ts";
import { call, createSite, openBrowser, rfbHandshake, signIn, type TestConnector, TestSocket, upgrade, welcomedConnector } from "./helpers.ts";
import { flushStreams, hibernate } from "./hibernate.ts";

/** The stated bounds (docs/protocol.md), written out: the test must not follow the code's constants. */
const PER_VIEWER = 16 * 1024 * 1024;
const PER_SITE = 48 * 1024 * 1024;
/** The server's side of rfbHandshake: the viewer received it before any test data. */
const HANDSHAKE = 12 + 2 + 4 + 28;
const CHUNK = 32 * 1024;
const empty = new Uint8Array(CHUNK); // 8,192 empty FramebufferUpdates: valid RFB

let n = 0;
async function plainSite(viewers: number) {
  const cookie = await signIn();
  const site = `budget${++n}`;
  const connector = await welcomedConnector(await createSite(cookie, site));
  const link = (await (await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", viewOnly: true }, cookie)).json()) as { wsUrl: string };
  const out: Viewer[] = [];
  for (let i = 0; i < viewers; i++) out.push(await plainViewer(connector, link.wsUrl));
  return { connector, viewers: out, link: link.wsUrl, stub: env.SITE.get(env.SITE.idFromName(site)) };
}

interface Viewer {
  socket: TestSocket;
  stream: number;
  /** Console bytes the test sent it (after the handshake), and the credit it still has. */
  sent: number;
  credit: number;
  /** Bytes the viewer received after the handshake. */
  received: number;
}

async function plainViewer(connector: TestConnector, wsUrl: string): Promise<Viewer> {
  const socket = await openBrowser(wsUrl);
  const open = await connector.nextFrame();
  expect(open.type).toBe(FrameType.open);
  connector.send(encodeOpenOk(open.stream));
  await rfbHandshake(connector, open.stream, socket);
  return { socket, stream: open.stream, sent: 0, credit: STREAM_WINDOW_BYTES - HANDSHAKE, received: 0 };
}

const ledger = (stub: DurableObjectStub) =>
  runInDurableObject(stub, (o) => {
    // (Optional only so that this test reports the bytes, not a TypeError, on an edge without it.)
    const l = (o as unknown as { streams: { unproven?: UnprovenLedger } }).streams.unproven;
    return { total: l?.total ?? 0, lingering: l?.lingeringSockets ?? 0 };
  });

/**
 * Plays the console for every viewer at once, within its credit, until each is closed or was sent
 * `cap`; the viewers count what reaches them. Returns the largest ledger total seen.
 */
async function pump(connector: TestConnector, viewers: Viewer[], cap: number, stub: DurableObjectStub): Promise<number> {
  let most = 0;
  const closedStreams = new Set<number>();
  for (;;) {
    let sentAny = false;
    for (const v of viewers) {
      if (closedStreams.has(v.stream) || v.socket.closed) continue;
      for (let k = 0; k < 8 && v.credit >= CHUNK && v.sent < cap; k++) {
        connector.send(encodeData(v.stream, empty));
        v.sent += CHUNK;
        v.credit -= CHUNK;
        sentAny = true;
      }
    }
    for (;;) {
      const f = await connector.nextFrame(sentAny ? 150 : 400).catch(() => null);
      if (!f) break;
      const v = viewers.find((x) => x.stream === f.stream);
      if (f.type === FrameType.credit && v) v.credit += f.bytes;
      if (f.type === FrameType.close) closedStreams.add(f.stream);
    }
    for (const v of viewers) while (v.socket.pending() > 0) v.received += ((await v.socket.next()) as ArrayBuffer).byteLength;
    most = Math.max(most, (await ledger(stub)).total);
    if (!sentAny) return most;
  }
}

describe("what plain viewers without fences may make one site object hold", () => {
  it("five stalled viewers at once: each is sent at most its own bound and all together at most the site's; cut ones are really gone", async () => {
    const { connector, viewers, link, stub } = await plainSite(5);
    // One viewer alone meets its own bound; then four together meet the site's long before their
    // own (4 × 16 MiB > 48 MiB). Played in that order so that each bound is met whatever the
    // order credit comes back in (all five at once, they could all be cut at the site's bound).
    const [first, ...rest] = viewers as [Viewer, ...Viewer[]];
    const most = Math.max(await pump(connector, [first], 2 * PER_VIEWER, stub), await pump(connector, rest, 2 * PER_VIEWER, stub));
    for (const v of viewers) expect(v.received).toBeLessThanOrEqual(PER_VIEWER);
    // What the object may still hold for them, at every point: a cut viewer's share stays counted
    // until its socket is gone (here its client answers the close at once, freeing room).
    expect(most).toBeLessThanOrEqual(PER_SITE);
    expect(most).toBeGreaterThan(PER_SITE - PER_VIEWER);
    // Every one was cut with a reason it can show (none of them can prove anything).
    const reasons: string[] = [];
    for (const v of viewers) {
      const closed = await v.socket.closedWith();
      expect(closed.code).toBe(CloseCode.tooSlow);
      reasons.push(closed.reason);
    }
    expect(reasons.filter((r) => /cannot confirm what it received/.test(r)).length).toBeGreaterThan(0);
    expect(reasons.filter((r) => /site's viewers hold too much unread console data/.test(r)).length).toBeGreaterThan(0);
    // The close reached each viewer (here the client answers it at once), so the runtime let go
    // of its sockets: nothing stays counted, and a new plain viewer is served again.
    for (let i = 0; i < 50 && (await ledger(stub)).lingering > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await ledger(stub)).toEqual({ total: 0, lingering: 0 });
    const next = await plainViewer(connector, link);
    await pump(connector, [next], 4 * CHUNK, stub);
    expect(next.received).toBe(4 * CHUNK);
    expect(next.socket.closed).toBeNull();
  }, 120_000);

  it("a viewer that answers fences late is held to what it proves, alongside stalled ones", async () => {
    const { connector, viewers, stub } = await plainSite(3);
    const [slow, ...stalled] = viewers as [Viewer, Viewer, Viewer];
    slow.socket.ws.send(Uint8Array.from([2, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xfe, 0xc8])); // Raw, Fence
    await connector.nextFrame(); // its SetEncodings reaches the console
    // The stalled two fill most of the site's bound; the slow one only ever has a window unproven.
    await pump(connector, stalled, 2 * PER_VIEWER, stub);
    const update = new Uint8Array(CHUNK); // empty updates again: a fence after each chunk
    for (let round = 0; round < 4; round++) {
      while (slow.credit >= CHUNK) {
        connector.send(encodeData(slow.stream, update));
        slow.credit -= CHUNK;
        slow.sent += CHUNK;
      }
      // Late: only now does it read and answer what it got.
      for (;;) {
        const m = await slow.socket.next(300).catch(() => null);
        if (!m) break;
        const b = new Uint8Array(m as ArrayBuffer);
        for (let at = b.length - 17; at >= 0; at--) {
          if (b[at] === 248 && b[at + 4] === 0x80 && b[at + 8] === 8) {
            const reply = b.slice(at, at + 17);
            reply[4] = 0;
            slow.socket.ws.send(reply);
            break;
          }
        }
      }
      for (;;) {
        const f = await connector.nextFrame(300).catch(() => null);
        if (!f) break;
        if (f.type === FrameType.credit && f.stream === slow.stream) slow.credit += f.bytes;
      }
      expect((await ledger(stub)).total).toBeLessThanOrEqual(PER_SITE);
    }
    expect(slow.sent).toBeGreaterThan(2 * STREAM_WINDOW_BYTES);
    expect(slow.socket.closed).toBeNull();
  }, 120_000);

  it("a viewer that never reads: cut at its bound, counted until its socket is really gone, then gets all of it and the close", async () => {
    const cookie = await signIn();
    const site = `budget${++n}`;
    const connector = await welcomedConnector(await createSite(cookie, site));
    const stub = env.SITE.get(env.SITE.idFromName(site));
    const link = (await (await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", viewOnly: false }, cookie)).json()) as { wsUrl: string };
    // Never accepted: nothing is read, so what the edge sends (and its close) waits in the
    // runtime's queue for this socket, as for a client whose TCP window stays shut.
    const url = new URL(link.wsUrl);
    const res = await upgrade(url.pathname + url.search);
    const open = await connector.nextFrame();
    connector.send(encodeOpenOk(open.stream));
    const v: Viewer = { socket: { closed: null, pending: () => 0 } as unknown as TestSocket, stream: open.stream, sent: 0, credit: STREAM_WINDOW_BYTES, received: 0 };
    await pump(connector, [v], 2 * PER_VIEWER, stub); // not RFB: the edge cannot frame it, no fences
    expect(v.sent).toBeLessThanOrEqual(PER_VIEWER + STREAM_WINDOW_BYTES);
    const held = await ledger(stub);
    expect(held.lingering).toBe(1);
    expect(held.total).toBeLessThanOrEqual(PER_VIEWER);
    expect(held.total).toBeGreaterThan(PER_VIEWER - STREAM_WINDOW_BYTES);
    // Still counted after the stream book wrote its state (what it would do before sleeping). (The
    // object cannot hibernate meanwhile: while the runtime holds unsent data for one of its
    // sockets, the pool refuses to evict it, "it still has active references"; should it sleep
    // once the data is in the kernel, the attachment's `cut` counts it.)
    await flushStreams(stub);
    expect(await ledger(stub)).toEqual(held);
    // The client reads at last: all it was sent, then the close with its reason; once it answers,
    // the runtime lets go of the socket and nothing stays counted.
    const socket = new TestSocket(res.webSocket!);
    let received = 0;
    for (;;) {
      const m = await socket.next(2000).catch(() => null);
      if (!m) break;
      received += (m as ArrayBuffer).byteLength;
    }
    expect(received).toBe(held.total);
    const closed = await socket.closedWith();
    expect(closed.code).toBe(CloseCode.tooSlow);
    expect(closed.reason).toMatch(/cannot confirm what it received/);
    for (let i = 0; i < 50 && (await ledger(stub)).lingering > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await ledger(stub)).toEqual({ total: 0, lingering: 0 });
  }, 120_000);

  it("hibernation forgives nothing: a viewer that never proves is cut at its bound across wakes", async () => {
    const { connector, viewers, stub } = await plainSite(1);
    const v = viewers[0]!;
    await pump(connector, [v], PER_VIEWER / 2, stub);
    expect(v.socket.closed).toBeNull();
    await hibernate(stub);
    await pump(connector, [v], 2 * PER_VIEWER, stub);
    expect(v.received).toBeLessThanOrEqual(PER_VIEWER);
    expect((await v.socket.closedWith()).code).toBe(CloseCode.tooSlow);
  }, 120_000);
});
