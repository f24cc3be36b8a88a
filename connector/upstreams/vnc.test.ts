/**
 * Plain VNC consoles through a tunnel, against a stand-in server that behaves like TigerVNC
 * towards unauthenticated connections: a crowd of consoles opened at once must not get the
 * connector's address refused, and a server that never greets must not hold a console forever.
 */
import { existsSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeClose, encodeData, encodeJson, type Frame, FrameType } from "../../shared/protocol/frames.ts";
import { startDesktop } from "../../test/harness/xvnc.ts";
import type { VncHypervisor } from "../config.ts";
import { FakeEdge, welcomedTunnel } from "../tunnel/fake-edge.ts";
import { VncUpstream } from "./vnc.ts";


const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const SERVER_INIT = Buffer.concat([Buffer.from([4, 0, 3, 0]), Buffer.alloc(16, 1), u32(4), Buffer.from("desk")]);

/**
 * Like TigerVNC: RFB 3.8 offering `types` (VNC authentication by default), at most `limit`
 * unauthenticated connections per client address (more are closed at once, without a greeting).
 * It counts connections that closed before authenticating: TigerVNC marks the address for each
 * and blacklists it at 5. `greetAfter` holds every greeting back (a hung server).
 */
async function startTigerLike(limit = 5, { types = [2], greetAfter }: { types?: number[]; greetAfter?: Promise<void> } = {}) {
  const stats = { connections: 0, unauthenticated: 0, maxUnauthenticated: 0, refused: 0, authenticated: 0, abandoned: 0 };
  /** Each connection's client version, as the server read it. */
  const versions: string[] = [];
  const settings = { greeting: "RFB 003.008\n" };
  const sockets = new Set<Socket>();
  const server: Server = createServer(async (s) => {
    sockets.add(s);
    stats.connections++;
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    if (stats.unauthenticated >= limit) {
      stats.refused++;
      s.destroy();
      return;
    }
    stats.unauthenticated++;
    stats.maxUnauthenticated = Math.max(stats.maxUnauthenticated, stats.unauthenticated);
    let authenticated = false;
    const authenticate = () => {
      authenticated = true;
      stats.unauthenticated--;
      stats.authenticated++;
      s.write(u32(0));
    };
    s.once("close", () => {
      if (authenticated) return;
      stats.unauthenticated--;
      stats.abandoned++;
    });
    let got = Buffer.alloc(0);
    let step = 0;
    let initAt = 0;
    s.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (step === 0 && got.length >= 12) {
        step = 1;
        versions.push(got.subarray(0, 12).toString("latin1"));
        s.write(Buffer.from([types.length, ...types]));
      }
      if (step === 1 && got.length >= 13) {
        if (got[12] === 1) {
          [step, initAt] = [3, 14];
          authenticate();
        } else {
          step = 2;
          s.write(Buffer.alloc(16, 0x5a)); // the challenge
        }
      }
      if (step === 2 && got.length >= 29) {
        [step, initAt] = [3, 30];
        authenticate();
      }
      if (step === 3 && got.length >= initAt) {
        step = 4;
        s.write(SERVER_INIT);
      }
    });
    await greetAfter;
    if (!s.destroyed) s.write(settings.greeting);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    stats,
    versions,
    settings,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * A viewer on the far side of the tunnel: completes the RFB 3.8 handshake of stream `id` (None or
 * VNC authentication, whichever the server offers first) and resolves once ServerInit arrived.
 * With `leaveAt`, it leaves (the edge sends CLOSE) once it sent that many messages instead: 0 on
 * the greeting, 1 after its version, 2 after its security choice.
 */
function viewer(edge: FakeEdge, id: number, leaveAt?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    let at = 0; // where the next expected server message starts
    let step = 0;
    let sent = 0; // messages the viewer sent
    const send = (bytes: Buffer | string) => {
      sent++;
      edge.deliver(encodeData(id, Buffer.from(bytes)));
    };
    const onFrame = (f: Frame) => {
      if (f.stream !== id) return;
      if (f.type === FrameType.openError || f.type === FrameType.close) {
        edge.off("frame", onFrame);
        reject(new Error(`stream ${id}: ${f.code} ${f.reason}`));
        return;
      }
      if (f.type !== FrameType.data) return;
      got = Buffer.concat([got, Buffer.from(f.bytes)]);
      for (;;) {
        const have = got.length - at;
        if (sent === leaveAt && (sent > 0 || have >= 12)) {
          edge.off("frame", onFrame);
          edge.deliver(encodeClose(FrameType.close, id, CloseCode.ended, "the viewer left"));
          return resolve();
        }
        if (step === 0 && have >= 12) {
          send("RFB 003.008\n");
          [at, step] = [at + 12, 1];
        } else if (step === 1 && have >= 1 && have >= 1 + got[at]!) {
          const type = got[at + 1]!;
          send(Buffer.from([type]));
          [at, step] = [at + 1 + got[at]!, type === 2 ? 2 : 3];
        } else if (step === 2 && have >= 16) {
          send(Buffer.alloc(16, 1)); // the challenge response
          [at, step] = [at + 16, 3];
        } else if (step === 3 && have >= 4) {
          if (got.readUInt32BE(at) !== 0) return reject(new Error(`stream ${id}: authentication failed`));
          send(Buffer.from([1])); // ClientInit, shared
          [at, step] = [at + 4, 4];
        } else if (step === 4 && have >= 24 && have >= 24 + got.readUInt32BE(at + 20)) {
          edge.off("frame", onFrame);
          return resolve();
        } else return;
      }
    };
    edge.on("frame", onFrame);
  });
}

function tunnelTo(config: VncHypervisor, options: Parameters<typeof welcomedTunnel>[2] = {}) {
  const edge = new FakeEdge();
  welcomedTunnel(edge, [new VncUpstream(config)], options);
  return edge;
}

const open = (edge: FakeEdge, id: number, vm = "desk") => edge.deliver(encodeJson(FrameType.open, id, { hypervisor: "lab", vm }));
const closeOf = (edge: FakeEdge, id: number) => edge.frames.find((f) => f.stream === id && (f.type === FrameType.close || f.type === FrameType.openError));
async function until(what: string, test: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const stop of stops.splice(0)) await stop();
});

describe("VNC consoles", () => {
  it("40 consoles opened at once all work: at most 2 unauthenticated connections reach the server at a time", async () => {
    const server = await startTigerLike(5);
    stops.push(server.stop);
    const address = `127.0.0.1:${server.port}`;
    const edge = tunnelTo({ name: "lab", type: "vnc", vms: [{ id: "desk", address }] });
    const ids = Array.from({ length: 40 }, (_, i) => i + 1);
    const viewers = ids.map((id) => viewer(edge, id));
    for (const id of ids) edge.deliver(encodeJson(FrameType.open, id, { hypervisor: "lab", vm: "desk" }));
    const results = await Promise.allSettled(viewers);
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    expect(server.stats).toMatchObject({ refused: 0, authenticated: 40 });
    expect(server.stats.maxUnauthenticated).toBe(2);
  });

  it("maxConcurrentHandshakes sets the number in flight", async () => {
    const server = await startTigerLike(5);
    stops.push(server.stop);
    const edge = tunnelTo({ name: "lab", type: "vnc", maxConcurrentHandshakes: 4, vms: [{ id: "desk", address: `127.0.0.1:${server.port}` }] });
    const ids = Array.from({ length: 12 }, (_, i) => i + 1);
    const viewers = ids.map((id) => viewer(edge, id));
    for (const id of ids) edge.deliver(encodeJson(FrameType.open, id, { hypervisor: "lab", vm: "desk" }));
    await Promise.all(viewers);
    expect(server.stats.maxUnauthenticated).toBe(4);
  });

  it("a server that accepts the connection and never greets gets OPEN_ERROR 4504 after 15 s", async () => {
    const connected: Socket[] = [];
    const silent = createServer((s) => connected.push(s.on("error", () => {})));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    stops.push(async () => {
      for (const s of connected) s.destroy();
      await new Promise((r) => silent.close(r));
    });
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const port = (silent.address() as { port: number }).port;
    const edge = tunnelTo({ name: "lab", type: "vnc", vms: [{ id: "mute", address: `127.0.0.1:${port}` }] });
    edge.deliver(encodeJson(FrameType.open, 5, { hypervisor: "lab", vm: "mute" }));
    while (connected.length === 0) await new Promise((r) => setImmediate(r));
    await vi.advanceTimersByTimeAsync(14_999);
    expect(edge.frames.filter((f) => f.stream === 5)).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(edge.frames.filter((f) => f.stream === 5)).toEqual([
      {
        type: FrameType.openError,
        stream: 5,
        code: CloseCode.upstreamTimeout,
        reason: "The VNC server accepted the connection but sent no greeting within 15 s.",
      },
    ]);
  });
});

describe("viewers that leave or say nothing mid-handshake (issue #23)", () => {
  it("viewers that leave at any step leave no unauthenticated connection: the connector finishes each handshake", async () => {
    const server = await startTigerLike(5, { types: [1] });
    stops.push(server.stop);
    const edge = tunnelTo({ name: "lab", type: "vnc", vms: [{ id: "desk", address: `127.0.0.1:${server.port}` }] });
    const ids = Array.from({ length: 9 }, (_, i) => i + 1);
    const leaving = ids.map((id) => viewer(edge, id, id % 3));
    for (const id of ids) open(edge, id);
    await Promise.all(leaving);
    await until("every connection is closed", () => server.stats.unauthenticated === 0 && server.stats.authenticated >= 1);
    expect(server.stats).toMatchObject({ abandoned: 0, refused: 0 });
    // And the next console works.
    const next = viewer(edge, 20);
    open(edge, 20);
    await next;
  });

  it("a viewer that leaves in the middle of its version: the server never sees a part of one", async () => {
    const server = await startTigerLike(5, { types: [1] });
    stops.push(server.stop);
    const edge = tunnelTo({ name: "lab", type: "vnc", vms: [{ id: "desk", address: `127.0.0.1:${server.port}` }] });
    open(edge, 1);
    await until("the console is open", () => edge.frames.some((f) => f.stream === 1 && f.type === FrameType.data));
    edge.deliver(encodeData(1, Buffer.from("RFB 003")));
    edge.deliver(encodeClose(FrameType.close, 1, CloseCode.ended, "the viewer left"));
    await until("the connector finished the handshake", () => server.stats.authenticated === 1 && server.stats.unauthenticated === 0);
    expect(server.versions).toEqual(["RFB 003.008\n"]);
  });

  it("a silent viewer is closed with 4408 after the silence bound, and its server's handshake is finished", async () => {
    const server = await startTigerLike(5, { types: [1] });
    stops.push(server.stop);
    const edge = tunnelTo({ name: "lab", type: "vnc", vms: [{ id: "desk", address: `127.0.0.1:${server.port}` }] }, { viewerSilenceMs: 50 });
    open(edge, 1);
    await until("the silent viewer is closed", () => closeOf(edge, 1) !== undefined);
    expect(closeOf(edge, 1)).toMatchObject({ type: FrameType.close, code: CloseCode.tooSlow, reason: expect.stringMatching(/said nothing within/) });
    await until("the server saw an authenticated connection", () => server.stats.authenticated === 1 && server.stats.unauthenticated === 0);
    expect(server.stats.abandoned).toBe(0);
  });

  it("a silent viewer on a server met for the first time gives its turn back after the park delay; it is dialled again when it speaks", async () => {
    const server = await startTigerLike(5, { types: [1] });
    stops.push(server.stop);
    const edge = tunnelTo(
      { name: "lab", type: "vnc", maxConcurrentHandshakes: 1, vms: [{ id: "desk", address: `127.0.0.1:${server.port}` }] },
      { viewerParkMs: 20 },
    );
    open(edge, 1); // says nothing
    await until("the silent viewer has its greeting", () => edge.frames.some((f) => f.stream === 1 && f.type === FrameType.data));
    const normal = viewer(edge, 2);
    open(edge, 2);
    await normal; // got the only turn while the silent viewer was still there
    expect(closeOf(edge, 1)).toBeUndefined();
    expect(server.stats).toMatchObject({ connections: 2, authenticated: 2, abandoned: 0 });
    // The silent viewer speaks at last: a new connection, and it gets the security types, not a second greeting.
    edge.deliver(encodeData(1, Buffer.from("RFB 003.008\n")));
    await until("the viewer got the security types", () =>
      edge.frames.some((f) => f.stream === 1 && f.type === FrameType.data && Buffer.from((f as { bytes: Uint8Array }).bytes).equals(Buffer.from([1, 1]))),
    );
    expect(server.stats.connections).toBe(3);
    const greetings = edge.frames.filter((f) => f.stream === 1 && f.type === FrameType.data && Buffer.from((f as { bytes: Uint8Array }).bytes).includes("RFB"));
    expect(greetings.length).toBe(1);
  });

  it("once a server's greeting is known, a silent viewer never opens a connection to it", async () => {
    const server = await startTigerLike(5, { types: [1] });
    stops.push(server.stop);
    const edge = tunnelTo({ name: "lab", type: "vnc", vms: [{ id: "desk", address: `127.0.0.1:${server.port}` }] }, { viewerSilenceMs: 50 });
    const first = viewer(edge, 1);
    open(edge, 1);
    await first;
    open(edge, 2);
    await until("the silent viewer is closed", () => closeOf(edge, 2) !== undefined);
    const greeted = edge.frames.filter((f) => f.stream === 2 && f.type === FrameType.data);
    expect(Buffer.concat(greeted.map((f) => (f as { bytes: Uint8Array }).bytes))).toEqual(Buffer.from("RFB 003.008\n"));
    expect(closeOf(edge, 2)).toMatchObject({ code: CloseCode.tooSlow });
    expect(server.stats.connections).toBe(1);
    // A viewer that answers the known greeting gets its console, the greeting only once.
    const third = viewer(edge, 3);
    open(edge, 3);
    await third;
    expect(server.stats).toMatchObject({ connections: 2, authenticated: 2, abandoned: 0 });
  });

  it("a server that went back to an older version than the known greeting: the console closes with 4502, saying so", async () => {
    const server = await startTigerLike(5, { types: [1] });
    stops.push(server.stop);
    const edge = tunnelTo({ name: "lab", type: "vnc", vms: [{ id: "desk", address: `127.0.0.1:${server.port}` }] });
    const first = viewer(edge, 1);
    open(edge, 1);
    await first;
    server.settings.greeting = "RFB 003.003\n";
    const second = viewer(edge, 2).catch((e: Error) => e.message);
    open(edge, 2);
    expect(await second).toBe("stream 2: 4502 The VNC server now greets with RFB 003.003, not RFB 003.008: open the console again.");
    await until("the connector finished that connection", () => server.stats.unauthenticated === 0);
    expect(server.stats.abandoned).toBe(0);
  });

  it("a hung server: the console gets 4504, the connection is kept and finished when the server wakes, and no more are opened meanwhile", async () => {
    let wake!: () => void;
    const server = await startTigerLike(5, { types: [1], greetAfter: new Promise<void>((r) => (wake = r)) });
    stops.push(server.stop);
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const edge = tunnelTo({ name: "lab", type: "vnc", maxConcurrentHandshakes: 1, vms: [{ id: "desk", address: `127.0.0.1:${server.port}` }] });
    open(edge, 1);
    while (server.stats.connections === 0) await new Promise((r) => setImmediate(r));
    await vi.advanceTimersByTimeAsync(15_000);
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(closeOf(edge, 1)).toMatchObject({ type: FrameType.openError, code: CloseCode.upstreamTimeout });
    const second = viewer(edge, 2);
    open(edge, 2);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(server.stats.connections).toBe(1); // the turn is still the first connection's
    vi.useRealTimers();
    wake();
    await second;
    expect(server.stats).toMatchObject({ connections: 2, authenticated: 2, abandoned: 0 });
  });
});

describe.skipIf(!existsSync("/usr/bin/Xvnc") || !existsSync("/usr/bin/xlogo"))("VNC consoles on a real TigerVNC", () => {
  it("40 consoles opened at once through one connector all work", async () => {
    const desktop = await startDesktop(320, 200);
    stops.push(() => desktop.stop());
    const edge = tunnelTo({ name: "lab", type: "vnc", vms: [{ id: "desk", address: `127.0.0.1:${desktop.port}` }] });
    const ids = Array.from({ length: 40 }, (_, i) => i + 1);
    const viewers = ids.map((id) => viewer(edge, id));
    for (const id of ids) edge.deliver(encodeJson(FrameType.open, id, { hypervisor: "lab", vm: "desk" }));
    const results = await Promise.allSettled(viewers);
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
  }, 60_000);
});

