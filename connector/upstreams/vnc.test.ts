/**
 * Plain VNC consoles through a tunnel, against a stand-in server that behaves like TigerVNC
 * towards unauthenticated connections: a crowd of consoles opened at once must not get the
 * connector's address refused, and a server that never greets must not hold a console forever.
 */
import { existsSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeData, encodeJson, type Frame, FrameType } from "../../shared/protocol/frames.ts";
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
 * Like TigerVNC: RFB 3.8 with VNC authentication, at most `limit` unauthenticated connections per
 * client address (more are closed at once, without a greeting).
 */
async function startTigerLike(limit = 5) {
  const stats = { unauthenticated: 0, maxUnauthenticated: 0, refused: 0, authenticated: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
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
    s.once("close", () => {
      if (!authenticated) stats.unauthenticated--;
    });
    let got = Buffer.alloc(0);
    let step = 0;
    s.write("RFB 003.008\n");
    s.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (step === 0 && got.length >= 12) {
        step = 1;
        s.write(Buffer.from([1, 2])); // one type: VNC authentication
      }
      if (step === 1 && got.length >= 13) {
        step = 2;
        s.write(Buffer.alloc(16, 0x5a)); // the challenge
      }
      if (step === 2 && got.length >= 29) {
        step = 3;
        authenticated = true;
        stats.unauthenticated--;
        stats.authenticated++;
        s.write(u32(0));
      }
      if (step === 3 && got.length >= 30) {
        step = 4;
        s.write(SERVER_INIT);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    stats,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * A viewer on the far side of the tunnel: completes the RFB 3.8 handshake of stream `id` (None or
 * VNC authentication, whichever the server offers first) and resolves once ServerInit arrived.
 */
function viewer(edge: FakeEdge, id: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    let at = 0; // where the next expected server message starts
    let step = 0;
    const send = (bytes: Buffer | string) => edge.deliver(encodeData(id, Buffer.from(bytes)));
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

function tunnelTo(config: VncHypervisor) {
  const edge = new FakeEdge();
  welcomedTunnel(edge, [new VncUpstream(config)]);
  return edge;
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

