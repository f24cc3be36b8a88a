/**
 * One console stream on the connector: an upstream console socket paired with a stream id on the
 * tunnel, with credit accounting in both directions.
 *
 * Down (console → edge): at most `sendCredit` bytes may be in flight. The upstream socket is paused
 * before its unsent bytes could exceed the credit, so this stream never holds more than one window.
 * Up (edge → console): the edge may have one window unacknowledged; credit goes back once bytes
 * are written to the console socket.
 */
import type { Duplex } from "node:stream";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeClose, encodeCredit, encodeOpenOk, FrameType, writeHeader } from "../../shared/protocol/frames.ts";
import { CREDIT_CHUNK_BYTES, FRAME_HEADER_BYTES } from "../../shared/protocol/limits.ts";
import { type HandshakeSlot, slotOf } from "../upstreams/handshake-limiter.ts";
import { RfbHandshake } from "./rfb-handshake.ts";

/** Node reads sockets in chunks of up to this size: pausing one chunk early keeps us under the window. */
const READ_CHUNK_BYTES = 64 * 1024;

export interface StreamHost {
  readonly windowBytes: number;
  readonly maxDataBytes: number;
  /** This stream has DATA (or its final CLOSE) to send: schedule it. */
  ready(stream: TunnelStream): void;
  /**
   * A stream's control frame (OPEN_OK, OPEN_ERROR, CREDIT, CLOSE on failure): sent ahead of
   * every stream's DATA. None of them must follow the stream's own DATA: OPEN_OK is queued before
   * the first byte is read, a failure discards what was pending, and CREDIT concerns the other
   * direction.
   */
  sendControl(frame: Uint8Array): void;
  /** The stream is over: forget it. */
  finished(stream: TunnelStream, code: number, reason: string): void;
}

export class TunnelStream {
  readonly id: number;
  readonly hypervisor: string;
  readonly vm: string;
  readonly openedAt = Date.now();
  /** Set while the stream sits in the scheduler's ready queue. */
  queued = false;
  bytesDown = 0;
  bytesUp = 0;

  private readonly host: StreamHost;
  private upstream: Duplex | null = null;
  private readonly abort = new AbortController();
  private sendCredit: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Edge bytes that arrived before the console was connected. */
  private early: Buffer[] = [];
  private recvOutstanding = 0;
  private creditToReturn = 0;
  /** Set when the console ended: sent after the last pending byte. */
  private ending: { code: number; reason: string } | null = null;
  private closed = false;
  /** This console's turn in its server's handshake queue, held until the RFB handshake is done. */
  private slot: HandshakeSlot | undefined;
  private readonly handshake = new RfbHandshake(() => this.slot?.release());

  constructor(host: StreamHost, id: number, hypervisor: string, vm: string) {
    this.host = host;
    this.id = id;
    this.hypervisor = hypervisor;
    this.vm = vm;
    this.sendCredit = host.windowBytes;
  }

  /** True once the RFB handshake with the upstream is over. */
  get handshakeDone(): boolean {
    return this.handshake.done;
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Bytes this stream holds in memory, both directions. */
  get bufferedBytes(): number {
    let early = 0;
    for (const b of this.early) early += b.length;
    return this.pendingBytes + early;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  attach(upstream: Duplex): void {
    if (this.closed) {
      upstream.destroy();
      return;
    }
    this.upstream = upstream;
    this.slot = slotOf(upstream);
    if (this.handshake.done) this.slot?.release();
    this.host.sendControl(encodeOpenOk(this.id));
    upstream.on("data", (chunk: Buffer) => this.onUpstreamData(chunk));
    upstream.once("end", () => this.end(CloseCode.ended, "The console ended."));
    upstream.once("error", (err: NodeJS.ErrnoException) =>
      this.end(CloseCode.upstreamFailed, `The console connection failed: ${err.code ?? err.message}.`),
    );
    upstream.once("close", () => this.end(CloseCode.ended, "The console ended."));
    for (const bytes of this.early) this.writeUp(bytes);
    this.early = [];
    // Openers may hand over a paused socket (with bytes put back by unshift): start it flowing.
    upstream.resume();
  }

  /** The console could not be opened. */
  refuse(code: number, reason: string): void {
    if (this.closed) return;
    this.host.sendControl(encodeClose(FrameType.openError, this.id, code, reason));
    this.closed = true;
    this.host.finished(this, code, reason);
  }

  // ---- from the edge -----------------------------------------------------------------------------

  onData(bytes: Uint8Array): void {
    if (this.closed) return;
    this.recvOutstanding += bytes.length;
    if (this.recvOutstanding > this.host.windowBytes) {
      this.fail(CloseCode.tooMuchInput, "more console input than the stream window allows");
      return;
    }
    this.bytesUp += bytes.length;
    this.handshake.fromClient(bytes);
    const copy = Buffer.from(bytes);
    if (this.upstream) this.writeUp(copy);
    else this.early.push(copy);
  }

  onCredit(bytes: number): void {
    this.sendCredit = Math.min(this.host.windowBytes, this.sendCredit + bytes);
    this.maybeResume();
    if (this.hasWork()) this.host.ready(this);
  }

  /** The edge closed the stream (viewer left, or the edge cut it). */
  onClose(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.teardown();
    this.host.finished(this, code, reason);
  }

  /** The tunnel is gone. */
  destroy(): void {
    this.closed = true;
    this.teardown();
  }

  // ---- to the edge -------------------------------------------------------------------------------

  hasWork(): boolean {
    return (this.pendingBytes > 0 && this.sendCredit > 0) || (this.ending !== null && this.pendingBytes === 0 && !this.closed);
  }

  /** Console bytes read and not yet sent. */
  get pendingDataBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Writes this stream's next frame into `out` at `at`, in at most `room` bytes, and returns its
   * size (0: nothing to send, or no room). A DATA frame takes min(room, maxDataBytes, `limit`,
   * credit, pending) bytes, copied once, from the console's read buffers straight into the
   * message; a stream that ended sends its CLOSE after its last byte.
   */
  writeFrame(out: Uint8Array, at: number, room: number, limit = Infinity): number {
    if (this.pendingBytes > 0 && this.sendCredit > 0) {
      const size = Math.min(this.host.maxDataBytes, limit, this.sendCredit, this.pendingBytes, room - FRAME_HEADER_BYTES);
      if (size <= 0) return 0;
      writeHeader(out, at, FrameType.data, this.id, size);
      this.copyPending(out, at + FRAME_HEADER_BYTES, size);
      this.sendCredit -= size;
      this.bytesDown += size;
      this.maybeResume();
      return FRAME_HEADER_BYTES + size;
    }
    if (this.ending && this.pendingBytes === 0 && !this.closed) {
      const { code, reason } = this.ending;
      const frame = encodeClose(FrameType.close, this.id, code, reason);
      if (frame.length > room) return 0;
      out.set(frame, at);
      this.closed = true;
      this.host.finished(this, code, reason);
      return frame.length;
    }
    return 0;
  }

  // ---- internals -------------------------------------------------------------------------------

  private onUpstreamData(chunk: Buffer): void {
    if (this.closed) return;
    this.handshake.fromServer(chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes + READ_CHUNK_BYTES > this.sendCredit) this.upstream?.pause();
    this.host.ready(this);
  }

  private maybeResume(): void {
    if (this.upstream?.isPaused() && !this.ending && this.pendingBytes + READ_CHUNK_BYTES <= this.sendCredit) {
      this.upstream.resume();
    }
  }

  /** Moves `size` pending bytes into `out` at `at` (the one copy a console byte costs here). */
  private copyPending(out: Uint8Array, at: number, size: number): void {
    let done = 0;
    while (done < size) {
      const head = this.pending[0]!;
      const n = Math.min(head.length, size - done);
      out.set(n === head.length ? head : head.subarray(0, n), at + done);
      done += n;
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
    }
    this.pendingBytes -= size;
  }

  private writeUp(bytes: Buffer): void {
    this.upstream!.write(bytes, () => this.returnCredit(bytes.length));
  }

  private returnCredit(bytes: number): void {
    if (this.closed) return;
    this.creditToReturn += bytes;
    if (this.creditToReturn >= CREDIT_CHUNK_BYTES) {
      this.host.sendControl(encodeCredit(this.id, this.creditToReturn));
      this.recvOutstanding -= this.creditToReturn;
      this.creditToReturn = 0;
    }
  }

  /** The console side is done; what it sent before still goes out first. */
  private end(code: number, reason: string): void {
    this.slot?.release();
    if (this.closed || this.ending) return;
    this.ending = { code, reason };
    this.host.ready(this);
  }

  private fail(code: number, reason: string): void {
    this.host.sendControl(encodeClose(FrameType.close, this.id, code, reason));
    this.closed = true;
    this.teardown();
    this.host.finished(this, code, reason);
  }

  private teardown(): void {
    this.slot?.release();
    this.abort.abort();
    this.upstream?.destroy();
    this.pending = [];
    this.pendingBytes = 0;
    this.early = [];
  }
}
