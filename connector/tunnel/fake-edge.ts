/**
 * For tests: a stand-in for the edge's WebSocket that records what the connector sends (as
 * decoded frames) and delivers frames from the "edge"; and a tunnel on it, already welcomed.
 */
import { EventEmitter } from "node:events";
import { pino } from "pino";
import type WebSocket from "ws";
import { decodeMessage, encodeJson, type Frame, FrameType } from "../../shared/protocol/frames.ts";
import { MAX_DATA_BYTES, STREAM_WINDOW_BYTES } from "../../shared/protocol/limits.ts";
import type { HypervisorInventory } from "../../shared/protocol/messages.ts";
import type { Upstream } from "../upstreams/upstream.ts";
import { Tunnel } from "./tunnel.ts";

export class FakeEdge extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  /** Every message the connector sent, as its frames ("sent" is emitted with its size). */
  sent: Frame[][] = [];
  /** The same frames, flattened ("frame" is emitted for each). */
  frames: Frame[] = [];
  /** Memory of messages handed over and not yet reported written: the sender must not touch it. */
  private unwritten = new Map<ArrayBufferLike, number>();
  /** Memory the sender handed over again before it was reported written (must stay empty). */
  reusedTooEarly: ArrayBufferLike[] = [];
  /** Every distinct memory block messages were sent from. */
  readonly buffers = new Set<ArrayBufferLike>();
  /** While set, write callbacks wait for `release()`: a socket whose peer is slow. */
  hold = false;
  private held: (() => void)[] = [];
  /** The most memory (distinct blocks) messages handed over and not yet written held at once. */
  peakUnwrittenBytes = 0;

  constructor() {
    super();
    this.setMaxListeners(0); // tests wait on frames with one listener per viewer
  }

  send(data: Uint8Array | string, _opts?: unknown, cb?: () => void): void {
    if (typeof data !== "string") {
      // Like a socket, the bytes are taken now (copied), and the memory is the sender's again
      // only once the callback has run.
      const memory = data.buffer;
      if (this.unwritten.has(memory)) this.reusedTooEarly.push(memory);
      this.unwritten.set(memory, (this.unwritten.get(memory) ?? 0) + 1);
      this.buffers.add(memory);
      let unwritten = 0;
      for (const m of this.unwritten.keys()) unwritten += m.byteLength;
      this.peakUnwrittenBytes = Math.max(this.peakUnwrittenBytes, unwritten);
      const frames = decodeMessage(new Uint8Array(data));
      this.sent.push(frames);
      this.emit("sent", data.length);
      for (const f of frames) {
        this.frames.push(f);
        this.emit("frame", f);
      }
    }
    const written = () => {
      if (typeof data !== "string") {
        const left = this.unwritten.get(data.buffer)! - 1;
        if (left === 0) this.unwritten.delete(data.buffer);
        else this.unwritten.set(data.buffer, left);
      }
      cb?.();
    };
    if (this.hold) this.held.push(written);
    else setImmediate(written);
  }

  /** Reports every held write as done. */
  release(): void {
    this.hold = false;
    for (const written of this.held.splice(0)) written();
  }

  close(): void {}
  terminate(): void {}

  /** Delivers frames from the "edge". */
  deliver(...frames: Uint8Array[]): void {
    for (const f of frames) this.emit("message", Buffer.from(f), true);
  }
}

/** A tunnel on a FakeEdge that has had its WELCOME (with `capabilities`; none = an older edge). */
export function welcomedTunnel(
  edge: FakeEdge,
  upstreams: Upstream[],
  {
    hypervisors = [],
    capabilities,
    maxDataBytes = MAX_DATA_BYTES,
    viewerSilenceMs,
    viewerParkMs,
  }: {
    hypervisors?: HypervisorInventory[];
    capabilities?: string[];
    maxDataBytes?: number;
    viewerSilenceMs?: number;
    viewerParkMs?: number;
  } = {},
): Tunnel {
  const tunnel = new Tunnel({
    ws: edge as unknown as WebSocket,
    upstreams: new Map(upstreams.map((u) => [u.name, u])),
    hello: { software: "test", hostname: "test", hypervisors },
    log: pino({ level: "silent" }),
    onWelcome: () => {},
    accepting: () => true,
    viewerSilenceMs,
    viewerParkMs,
  });
  edge.deliver(
    encodeJson(FrameType.welcome, 0, {
      protocol: 1,
      connectorId: "c1",
      site: "s",
      windowBytes: STREAM_WINDOW_BYTES,
      maxDataBytes,
      heartbeatMs: 60_000,
      ...(capabilities ? { capabilities } : {}),
    }),
  );
  return tunnel;
}
