/**
 * The connector's scheduler, with a stand-in socket that records what would go to the edge:
 * fair turns between streams, credit honoured, bounded buffering.
 */
import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";
import { pino } from "pino";
import type WebSocket from "ws";
import { describe, expect, it } from "vitest";
import {
  decodeMessage,
  encodeCredit,
  encodeJson,
  type Frame,
  FrameType,
} from "../../shared/protocol/frames.ts";
import { MAX_DATA_BYTES, STREAM_WINDOW_BYTES } from "../../shared/protocol/limits.ts";
import type { Upstream } from "../upstreams/upstream.ts";
import { Tunnel } from "./tunnel.ts";

class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  sent: Frame[][] = [];
  send(data: Uint8Array | string, _opts?: unknown, cb?: () => void): void {
    if (typeof data !== "string") this.sent.push(decodeMessage(new Uint8Array(data)));
    setImmediate(() => cb?.());
  }
  close(): void {}
  terminate(): void {}
  /** Delivers frames from the "edge". */
  deliver(...frames: Uint8Array[]): void {
    for (const f of frames) this.emit("message", Buffer.from(f), true);
  }
}

const tick = () => new Promise((r) => setImmediate(r));
const settle = async () => {
  for (let i = 0; i < 20; i++) await tick();
};

async function tunnelWith(consoles: Map<string, PassThrough>) {
  const ws = new FakeSocket();
  const upstream = {
    name: "lab",
    type: "vnc",
    openConsole: async (vm: string) => consoles.get(vm)!,
  } as unknown as Upstream;
  const tunnel = new Tunnel({
    ws: ws as unknown as WebSocket,
    upstreams: new Map([["lab", upstream]]),
    hello: { software: "test", hostname: "test", hypervisors: [] },
    log: pino({ level: "silent" }),
    onWelcome: () => {},
    accepting: () => true,
  });
  ws.deliver(
    encodeJson(FrameType.welcome, 0, {
      protocol: 1,
      connectorId: "c1",
      site: "s",
      windowBytes: STREAM_WINDOW_BYTES,
      maxDataBytes: MAX_DATA_BYTES,
      heartbeatMs: 60_000,
    }),
  );
  await settle();
  return { ws, tunnel };
}

describe("tunnel scheduler", () => {
  it("a keystroke on one console goes out within one frame of a bulk console's data", async () => {
    const bulk = new PassThrough();
    const keys = new PassThrough();
    const { ws } = await tunnelWith(new Map([["bulk", bulk], ["keys", keys]]));
    ws.deliver(encodeJson(FrameType.open, 1, { hypervisor: "lab", vm: "bulk" }), encodeJson(FrameType.open, 2, { hypervisor: "lab", vm: "keys" }));
    await settle();
    ws.sent = [];
    bulk.write(Buffer.alloc(STREAM_WINDOW_BYTES, 1)); // a full window of bulk data, all at once
    keys.write(Buffer.from("k"));
    await settle();
    const order = ws.sent.flat().filter((f) => f.type === FrameType.data).map((f) => f.stream);
    // Stream 2's byte is sent no later than after the first of stream 1's frames.
    expect(order.indexOf(2)).toBeGreaterThanOrEqual(0);
    expect(order.indexOf(2)).toBeLessThanOrEqual(1);
    for (const f of ws.sent.flat()) if (f.type === FrameType.data) expect(f.bytes.length).toBeLessThanOrEqual(MAX_DATA_BYTES);
  });

  it("never sends more than the credit, in order, and resumes where it stopped when credit comes back", async () => {
    const source = new PassThrough({ highWaterMark: 16 * 1024 });
    const { ws, tunnel } = await tunnelWith(new Map([["src", source]]));
    ws.deliver(encodeJson(FrameType.open, 7, { hypervisor: "lab", vm: "src" }));
    await settle();
    // Every byte says where it was in the console's output, so order and gaps show.
    const total = 64 * 64 * 1024;
    const output = Buffer.alloc(total);
    for (let i = 0; i < total; i++) output[i] = (i * 7 + (i >> 12)) & 0xff;
    // Push far more than a window; the stream must stop reading its upstream.
    for (let at = 0; at < total; at += 64 * 1024) {
      source.write(output.subarray(at, at + 64 * 1024));
      await tick();
    }
    await settle();
    const frames = () => ws.sent.flat().filter((f) => f.stream === 7);
    const received = () => Buffer.concat(frames().flatMap((f) => (f.type === FrameType.data ? [f.bytes] : [])));
    expect(frames()[0]!.type).toBe(FrameType.openOk);
    expect(received().length).toBe(STREAM_WINDOW_BYTES);
    expect(received().equals(output.subarray(0, STREAM_WINDOW_BYTES))).toBe(true);
    expect(tunnel.bufferedBytes).toBeLessThanOrEqual(STREAM_WINDOW_BYTES);
    // The connector stopped reading: the rest waits in the console's own socket.
    expect(source.writableLength + source.readableLength).toBeGreaterThan(total - 2 * STREAM_WINDOW_BYTES);
    ws.deliver(encodeCredit(7, 128 * 1024));
    await settle();
    expect(received().equals(output.subarray(0, STREAM_WINDOW_BYTES + 128 * 1024))).toBe(true);
  });
});
