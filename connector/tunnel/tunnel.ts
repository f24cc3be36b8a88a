/**
 * One live WebSocket to the edge: the handshake, the frame dispatcher, heartbeats, and the fair
 * scheduler that interleaves every stream's frames onto the one socket.
 *
 * Fairness: control frames first, then streams with little to send (a keystroke's echo) ahead of
 * bulk ones, which take turns one frame each; at most INFLIGHT_LIMIT bytes sit in the socket's own
 * queue. While bulk bytes wait, interactive ones go in a message of their own and may pass that
 * limit by URGENT_INFLIGHT_BYTES, so a keystroke waits behind no bulk bytes in the connector.
 *
 * Copies: each message is assembled in one buffer, frame headers written in place and each
 * console byte copied once from the upstream's read buffers; the buffer goes back to a small pool
 * when `ws.send` reports it written (with an all-zero mask `ws` writes our buffer itself).
 */
import type WebSocket from "ws";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import {
  decodeMessage,
  encodeClose,
  encodeOpenAck,
  encodeJson,
  type Frame,
  FrameType,
  ProtocolError,
} from "../../shared/protocol/frames.ts";
import {
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_REPLY,
  HEARTBEAT_REQUEST,
  MAX_DATA_BYTES_ACCEPTED,
  PROTOCOL_VERSIONS,
  STREAM_WINDOW_BYTES,
} from "../../shared/protocol/limits.ts";
import {
  CAPABILITIES,
  Capability,
  type HypervisorInventory,
  OpenRequest,
  type TunnelReply,
  TunnelRequest,
  Welcome,
} from "../../shared/protocol/messages.ts";
import type { Log } from "../log.ts";
import type { Upstream } from "../upstreams/upstream.ts";
import { UpstreamError } from "../upstreams/upstream.ts";
import { GreetingCache } from "./greeting-cache.ts";
import { OutgoingMessages } from "./outgoing.ts";
import { type StreamHost, TunnelStream, VIEWER_PARK_MS, VIEWER_SILENCE_MS } from "./stream.ts";

/** Bytes handed to the socket but not yet written to the kernel. */
const INFLIGHT_LIMIT = 512 * 1024;
/**
 * A message gathers frames, streams taking turns one frame at a time, up to about this size: a
 * lone busy stream fills it (the edge pays per message), two busy streams alternate frame by frame.
 */
const BATCH_BYTES = 256 * 1024;
/** Message buffers: a full batch plus room for control frames ahead of it. */
const MESSAGE_BUFFER_BYTES = BATCH_BYTES + 1024;
/**
 * Message buffers handed to the socket at once, and kept for reuse: enough for INFLIGHT_LIMIT in
 * large messages. Beyond that, and for small messages, the message is copied out of the buffer
 * instead, so a burst of small messages cannot hold a large buffer each.
 */
const POOLED_BUFFERS = Math.ceil(INFLIGHT_LIMIT / BATCH_BYTES) + 1;
/** Messages up to this size are sent as a copy (cheap) and the message buffer is kept. */
const SMALL_MESSAGE_BYTES = 16 * 1024;
/** A message is sent once less room than this is left in it (no tiny frames to fill it up). */
const MIN_FRAME_ROOM = 4 * 1024;
/**
 * A stream with at most this many bytes waiting (a keystroke's echo, a cursor move) goes ahead of
 * streams with more: it costs the bulk ones little and is what a person waits for.
 */
const INTERACTIVE_BYTES = 16 * 1024;
/**
 * Interactive work (control frames, the streams above) may pass INFLIGHT_LIMIT by this much, in a
 * message of its own while bulk streams wait: a keystroke's echo then neither waits for the socket
 * to drain a neighbour's half megabyte nor rides at the head of a 256 KiB message the edge must
 * receive whole before it reads the echo. Costs a message only while both kinds have bytes ready.
 */
const URGENT_INFLIGHT_BYTES = 64 * 1024;

function localHeartbeatMs(): number {
  const fromEnv = Number(process.env.PORTHOLE_HEARTBEAT_MS);
  return Number.isInteger(fromEnv) && fromEnv >= 100 ? fromEnv : HEARTBEAT_INTERVAL_MS;
}

export interface TunnelOptions {
  ws: WebSocket;
  upstreams: Map<string, Upstream>;
  hello: { software: string; hostname: string; hypervisors: HypervisorInventory[] };
  log: Log;
  /** Called once the edge accepted the HELLO. */
  onWelcome(welcome: Welcome): void;
  /** False while the connector drains for shutdown: new consoles are refused. */
  accepting(): boolean;
  /** Servers' greetings seen so far; the connector keeps one across tunnels. */
  greetings?: GreetingCache;
  /** Default VIEWER_SILENCE_MS and VIEWER_PARK_MS (tests change them). */
  viewerSilenceMs?: number;
  viewerParkMs?: number;
}

export class Tunnel implements StreamHost {
  windowBytes = STREAM_WINDOW_BYTES;
  maxDataBytes = MAX_DATA_BYTES_ACCEPTED;
  readonly viewerSilenceMs: number;
  readonly viewerParkMs: number;
  readonly streams = new Map<number, TunnelStream>();
  private readonly opts: TunnelOptions;
  private readonly ws: WebSocket;
  private readonly log: Log;
  /** Streams with little to send, served first; then the bulk ones, in turn. */
  private urgentQueue: TunnelStream[] = [];
  private readyQueue: TunnelStream[] = [];
  private control: Uint8Array[] = [];
  private inflight = 0;
  /** The buffer the next message is assembled in. */
  private assembly: Buffer | null = null;
  /** Message buffers `ws` has finished writing, ready for the next message. */
  private freeBuffers: Buffer[] = [];
  /** Message buffers handed to `ws` and not yet reported written (at most POOLED_BUFFERS). */
  private handedOut = 0;
  /** WebSocket messages handed to the socket, heartbeats included (the edge's host bills incoming messages). */
  messagesSent = 0;
  private pumpScheduled = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private lastHeard = Date.now();
  private heartbeatMs = localHeartbeatMs();
  private readonly outgoing: OutgoingMessages;
  /** The capabilities the edge accepted in WELCOME (none from an edge that predates them). */
  private edgeCapabilities = new Set<string>();
  private draining = false;
  private readonly greetings: GreetingCache;
  welcomed = false;

  constructor(opts: TunnelOptions) {
    this.opts = opts;
    this.greetings = opts.greetings ?? new GreetingCache();
    this.viewerSilenceMs = opts.viewerSilenceMs ?? VIEWER_SILENCE_MS;
    this.viewerParkMs = opts.viewerParkMs ?? VIEWER_PARK_MS;
    this.ws = opts.ws;
    this.log = opts.log;
    this.ws.on("message", (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    this.ws.on("close", () => this.onClosed());
    this.outgoing = new OutgoingMessages(opts.log);
    const { software, hostname, hypervisors } = opts.hello;
    this.control.push(
      this.outgoing.hello({ protocols: PROTOCOL_VERSIONS, software, hostname, capabilities: CAPABILITIES }, hypervisors),
    );
    this.schedulePump();
    this.startHeartbeat();
  }

  /** Bytes every stream holds in memory right now. */
  get bufferedBytes(): number {
    let total = 0;
    for (const s of this.streams.values()) total += s.bufferedBytes;
    return total;
  }

  /** Whether the edge accepted an optional protocol feature in WELCOME. */
  edgeAccepts(capability: Capability): boolean {
    return this.edgeCapabilities.has(capability);
  }

  sendInventory(hypervisors: HypervisorInventory[]): void {
    // A newer inventory replaces one not sent yet: the edge only needs the latest.
    this.control = this.control.filter((frame) => frame[0] !== FrameType.inventory);
    if (!this.draining) this.control.push(this.outgoing.inventory(hypervisors));
    // An edge that knows `drain` keeps the VMs listed and routes new consoles elsewhere; an older
    // edge learns the same from an empty inventory.
    else if (this.edgeAccepts(Capability.drain)) this.control.push(this.outgoing.inventory(hypervisors, true));
    else this.control.push(this.outgoing.inventory([]));
    this.schedulePump();
  }

  /** Graceful stop: the edge sends no new consoles here; open ones go on. */
  drain(hypervisors: HypervisorInventory[]): void {
    this.draining = true;
    this.sendInventory(hypervisors);
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  // ---- StreamHost --------------------------------------------------------------------------------

  ready(stream: TunnelStream): void {
    if (!stream.queued) this.enqueue(stream);
    this.schedulePump();
  }

  sendControl(frame: Uint8Array): void {
    this.control.push(frame);
    this.schedulePump();
  }

  private enqueue(stream: TunnelStream): void {
    stream.queued = true;
    if (stream.pendingDataBytes <= INTERACTIVE_BYTES) this.urgentQueue.push(stream);
    else this.readyQueue.push(stream);
  }

  greeted(stream: TunnelStream, greeting: Buffer): void {
    this.greetings.set(stream.hypervisor, stream.vm, greeting);
  }

  handshakeFinished(stream: TunnelStream, result: { outcome: string; detail: string }): void {
    this.log.info(
      { event: "console.handshake_finished", stream: stream.id, hypervisor: stream.hypervisor, vm: stream.vm, ...result },
      "finished the VNC server's handshake for a viewer that left",
    );
  }

  finished(stream: TunnelStream, code: number, reason: string): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    this.log.info(
      {
        event: "console.closed",
        stream: stream.id,
        hypervisor: stream.hypervisor,
        vm: stream.vm,
        code,
        reason,
        bytesDown: stream.bytesDown,
        bytesUp: stream.bytesUp,
        seconds: Math.round((Date.now() - stream.openedAt) / 100) / 10,
      },
      "console closed",
    );
  }

  // ---- receiving ---------------------------------------------------------------------------------

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.lastHeard = Date.now();
    if (!isBinary) {
      if (data.toString() === HEARTBEAT_REPLY) return;
      return this.protocolError("unexpected text message");
    }
    let frames: Frame[];
    try {
      frames = decodeMessage(data);
    } catch (err) {
      if (err instanceof ProtocolError) return this.protocolError(err.message);
      throw err;
    }
    for (const frame of frames) {
      try {
        this.onFrame(frame);
      } catch (err) {
        if (err instanceof ProtocolError) return this.protocolError(err.message);
        throw err;
      }
    }
  }

  private onFrame(frame: Frame): void {
    if (!this.welcomed) {
      if (frame.type !== FrameType.welcome) throw new ProtocolError("the edge must answer HELLO with WELCOME");
      const welcome = Welcome.safeParse(frame.json);
      if (!welcome.success) throw new ProtocolError("malformed WELCOME");
      this.welcomed = true;
      this.edgeCapabilities = new Set(welcome.data.capabilities ?? []);
      this.windowBytes = welcome.data.windowBytes;
      this.maxDataBytes = Math.min(welcome.data.maxDataBytes, MAX_DATA_BYTES_ACCEPTED);
      // The connector may ping more often than the edge asks (PORTHOLE_HEARTBEAT_MS), never less.
      this.heartbeatMs = Math.min(welcome.data.heartbeatMs, localHeartbeatMs());
      this.startHeartbeat();
      this.opts.onWelcome(welcome.data);
      return;
    }
    switch (frame.type) {
      case FrameType.open:
        return this.onOpen(frame.stream, frame.json);
      case FrameType.data:
        this.streams.get(frame.stream)?.onData(frame.bytes);
        return;
      case FrameType.credit:
        this.streams.get(frame.stream)?.onCredit(frame.bytes);
        return;
      case FrameType.close:
        this.streams.get(frame.stream)?.onClose(frame.code, frame.reason);
        return;
      case FrameType.request:
        return this.onRequest(frame.stream, frame.json);
      default:
        throw new ProtocolError(`frame type 0x${frame.type.toString(16)} is not sent by the edge`);
    }
  }

  private onOpen(id: number, json: unknown): void {
    if (this.streams.has(id)) throw new ProtocolError(`stream ${id} is already open`);
    const request = OpenRequest.safeParse(json);
    if (!request.success) throw new ProtocolError("malformed OPEN");
    const { hypervisor, vm } = request.data;
    const stream = new TunnelStream(this, id, hypervisor, vm);
    this.streams.set(id, stream);
    // Received: the edge offers the console elsewhere if a connector says nothing for seconds.
    if (this.edgeCapabilities.has(Capability.ack)) this.sendControl(encodeOpenAck(id));
    const upstream = this.opts.upstreams.get(hypervisor);
    if (this.draining || !this.opts.accepting()) {
      return stream.refuse(CloseCode.connectorOffline, "The connector is stopping; try again in a moment.");
    }
    if (!upstream) {
      return stream.refuse(CloseCode.notFound, `This connector has no hypervisor named ${hypervisor}.`);
    }
    this.log.info({ event: "console.opening", stream: id, hypervisor, vm }, "opening console");
    // A server whose greeting is known is dialled only once the viewer answered it (stream.ts).
    const greeting = this.greetings.get(hypervisor, vm);
    const dial = () => this.dial(stream, upstream);
    if (greeting) return stream.greetEarly(greeting, dial);
    stream.redial = dial;
    dial();
  }

  private dial(stream: TunnelStream, upstream: Upstream): void {
    const { id, hypervisor, vm } = stream;
    upstream.openConsole(vm, stream.signal).then(
      (socket) => {
        // A stream closed meanwhile still takes the socket: it finishes the server's handshake.
        stream.attach(socket);
        if (stream.isClosed) return;
        this.log.info({ event: "console.opened", stream: id, hypervisor, vm }, "console opened");
      },
      (err: unknown) => {
        const failure =
          err instanceof UpstreamError ? err : new UpstreamError(CloseCode.upstreamFailed, "The console could not be opened.");
        if (!(err instanceof UpstreamError)) this.log.error({ event: "console.error", stream: id, err }, "unexpected error");
        this.log.warn({ event: "console.refused", stream: id, hypervisor, vm, code: failure.code, reason: failure.message }, "console not opened");
        void failure.finishing?.then((result) => this.handshakeFinished(stream, result));
        stream.refuse(failure.code, failure.message);
      },
    );
  }

  /** The edge's questions outside console streams: today, CloudTower's LAN URLs for a VM. */
  private onRequest(id: number, json: unknown): void {
    const request = TunnelRequest.safeParse(json);
    if (!request.success) throw new ProtocolError("malformed REQUEST");
    const { hypervisor, vm } = request.data;
    const upstream = this.opts.upstreams.get(hypervisor);
    const answer = (reply: TunnelReply) => {
      this.control.push(encodeJson(FrameType.reply, id, this.outgoing.reply(reply)));
      this.schedulePump();
    };
    if (!upstream?.lanUrls) {
      return answer({ ok: false, code: CloseCode.notFound, message: `Hypervisor ${hypervisor} has no LAN console URLs.` });
    }
    upstream.lanUrls(vm).then(
      (result) => answer({ ok: true, result }),
      (err: unknown) =>
        answer({
          ok: false,
          code: err instanceof UpstreamError ? err.code : CloseCode.upstreamFailed,
          message: err instanceof UpstreamError ? err.message : "The hypervisor could not be asked.",
        }),
    );
  }

  private protocolError(message: string): void {
    this.log.error({ event: "tunnel.protocol_error", message }, "protocol error from the edge");
    this.ws.close(CloseCode.protocolError, `protocol error: ${message}`.slice(0, 120));
  }

  private onClosed(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const stream of this.streams.values()) stream.destroy();
    this.streams.clear();
    this.readyQueue = [];
    this.urgentQueue = [];
  }

  // ---- sending -----------------------------------------------------------------------------------

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // After the current I/O callbacks: frames produced in one loop turn share a message.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private get hasWork(): boolean {
    return this.control.length > 0 || this.urgentQueue.length > 0 || this.readyQueue.length > 0;
  }

  private pump(): void {
    while (this.ws.readyState === this.ws.OPEN && this.hasWork) {
      const urgent = this.control.length > 0 || this.urgentQueue.length > 0;
      if (this.inflight >= INFLIGHT_LIMIT + (urgent ? URGENT_INFLIGHT_BYTES : 0)) return;
      // Interactive bytes go alone while bulk ones wait, or while only they may pass the limit.
      const urgentOnly = urgent && (this.readyQueue.length > 0 || this.inflight >= INFLIGHT_LIMIT);
      // A control frame too large for a message buffer (an inventory, up to 1 MiB) goes alone.
      const first = this.control[0];
      if (first && first.length > MESSAGE_BUFFER_BYTES) {
        this.control.shift();
        this.send(first, null);
        continue;
      }
      const buffer = this.assembly ?? this.freeBuffers.pop() ?? Buffer.allocUnsafe(MESSAGE_BUFFER_BYTES);
      this.assembly = buffer;
      let size = 0;
      // Control frames first: they are small and unblock the edge (OPEN_OK, CREDIT).
      while (this.control.length > 0 && size + this.control[0]!.length <= buffer.length) {
        const frame = this.control.shift()!;
        buffer.set(frame, size);
        size += frame.length;
      }
      // Then stream data, unless control frames are still waiting (OPEN_OK before any DATA). An
      // interactive-only message stops where the allowance past the in-flight limit ends.
      const room = urgentOnly ? Math.min(buffer.length, Math.max(MIN_FRAME_ROOM, INFLIGHT_LIMIT + URGENT_INFLIGHT_BYTES - this.inflight)) : buffer.length;
      while (this.control.length === 0 && room - size >= MIN_FRAME_ROOM && size < BATCH_BYTES) {
        const stream = this.urgentQueue.shift() ?? (urgentOnly ? undefined : this.readyQueue.shift());
        if (!stream) break;
        stream.queued = false;
        size += stream.writeFrame(buffer, size, room - size);
        if (stream.hasWork()) this.enqueue(stream);
      }
      if (size === 0) return;
      if (size <= SMALL_MESSAGE_BYTES || this.handedOut >= POOLED_BUFFERS) {
        this.send(Buffer.copyBytesFrom(buffer, 0, size), null);
      } else {
        this.assembly = null;
        this.handedOut++;
        this.send(buffer.subarray(0, size), buffer);
      }
    }
  }

  /** Hands a message to the socket; `pooled` is reused once `ws` has written it. */
  private send(message: Uint8Array, pooled: Buffer | null): void {
    this.inflight += message.length;
    this.messagesSent++;
    this.ws.send(message, { binary: true }, () => {
      this.inflight -= message.length;
      if (pooled) {
        this.handedOut--;
        if (this.freeBuffers.length < POOLED_BUFFERS) this.freeBuffers.push(pooled);
      }
      if (this.hasWork) this.schedulePump();
    });
  }

  private startHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > 3 * this.heartbeatMs) {
        this.log.warn({ event: "tunnel.heartbeat_lost" }, "no answer from the edge: reconnecting");
        this.ws.terminate();
        return;
      }
      this.messagesSent++;
      this.ws.send(HEARTBEAT_REQUEST);
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Tells the edge a stream is over (used when draining). */
  closeStream(stream: TunnelStream, code: number, reason: string): void {
    this.sendControl(encodeClose(FrameType.close, stream.id, code, reason));
    stream.destroy();
    this.finished(stream, code, reason);
  }
}
