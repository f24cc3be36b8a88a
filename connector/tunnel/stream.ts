/**
 * One console stream on the connector: an upstream console socket paired with a stream id on the
 * tunnel, with credit accounting in both directions.
 *
 * Down (console → edge): at most `sendCredit` bytes may be in flight. The upstream socket is paused
 * before its unsent bytes could exceed the credit, so this stream never holds more than one window.
 * Up (edge → console): the edge may have one window unacknowledged; credit goes back once bytes
 * are written to the console socket.
 *
 * The RFB handshake is never left half done on the server (handshake-finisher.ts): if the viewer
 * leaves, stays silent past VIEWER_SILENCE_MS, or the tunnel drops before ServerInit, the
 * connector finishes the server's side itself and closes cleanly. When the server's greeting is
 * known from an earlier console (`greetEarly`), the viewer gets it at once and the server is only
 * dialled once the viewer answered it: a viewer that never speaks costs the server nothing.
 */
import type { Duplex } from "node:stream";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeClose, encodeCredit, encodeOpenOk, FrameType, writeHeader } from "../../shared/protocol/frames.ts";
import { CREDIT_CHUNK_BYTES, FRAME_HEADER_BYTES } from "../../shared/protocol/limits.ts";
import { type FinishResult, finishHandshake, HandshakeTranscript, rfbMinor } from "../upstreams/handshake-finisher.ts";
import { type BlockReader, blockReaderOf } from "../upstreams/block-reader.ts";
import { type HandshakeSlot, slotOf } from "../upstreams/handshake-limiter.ts";
import type { Block } from "../upstreams/read-blocks.ts";
import { RfbHandshake } from "./rfb-handshake.ts";

/** Node reads sockets in chunks of up to this size: pausing one chunk early keeps us under the window. */
const READ_CHUNK_BYTES = 64 * 1024;
/**
 * How long a viewer may stay silent after the server's greeting reached the tunnel before it
 * answers with its own version; then its console closes (4408). Any client answers at once; a
 * socket that says nothing (a stuck page, a port scanner with a link) must not keep a server's
 * handshake turn, nor a half-open connection on it, until the edge's 60 s handshake deadline.
 */
export const VIEWER_SILENCE_MS = 10_000;
/**
 * A viewer that has not answered the greeting this long after the first connection to a server
 * (no greeting known yet) stops holding that server's handshake turn: the connector finishes and
 * closes that connection, and dials again, with the greeting now known, once the viewer answers.
 * Clients answer within a round trip; this only costs a slow one a second connection.
 */
export const VIEWER_PARK_MS = 2_000;
/** The RFB version message both sides start with: "RFB 003.008\n". */
const VERSION_BYTES = 12;

export interface StreamHost {
  readonly windowBytes: number;
  readonly maxDataBytes: number;
  /** VIEWER_SILENCE_MS and VIEWER_PARK_MS, unless a test changes them. */
  readonly viewerSilenceMs?: number;
  readonly viewerParkMs?: number;
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
  /** The server's greeting (its first 12 bytes), for `greetEarly` next time. */
  greeted?(stream: TunnelStream, greeting: Buffer): void;
  /** The connector finished (or gave up) a server handshake its viewer left. */
  handshakeFinished?(stream: TunnelStream, result: FinishResult): void;
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
  /** For each pending chunk, the read block it points into (null: a buffer of its own). */
  private pendingBlocks: (Block | null)[] = [];
  private pendingBytes = 0;
  /** The upstream socket's block reader, when it reads into reused blocks (block-reader.ts). */
  private reader: BlockReader | undefined;
  /** Edge bytes that arrived before the console was connected. */
  private early: Buffer[] = [];
  private recvOutstanding = 0;
  private creditToReturn = 0;
  /** Set when the console ended: sent after the last pending byte. */
  private ending: { code: number; reason: string } | null = null;
  private closed = false;
  /** This console's turn in its server's handshake queue, held until the RFB handshake is done. */
  private slot: HandshakeSlot | undefined;
  private handshake = this.watchHandshake();
  /** Both directions' handshake bytes, for finishing the server's side if the viewer leaves. */
  private transcript = new HandshakeTranscript();
  /** The viewer's first bytes, held until its whole version (12 bytes) is there. */
  private unspoken: Buffer[] = [];
  private unspokenBytes = 0;
  private spoke = false;
  private silence: NodeJS.Timeout | undefined;
  private park: NodeJS.Timeout | undefined;
  /** Dials the upstream again (after `parkSilentViewer`); set by the tunnel. */
  redial: (() => void) | null = null;
  private openOkSent = false;
  /** `greetEarly`: the greeting the viewer already has, and the dial waiting for the viewer. */
  private expectedGreeting: Buffer | null = null;
  private serverGreeting = Buffer.alloc(0);
  private deferredOpen: (() => void) | null = null;
  /** Removes this stream's listeners from the upstream socket (before handing it to the finisher). */
  private detach: (() => void) | null = null;

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
      // The viewer left as its console opened: the server greeted, so its handshake is finished.
      void finishHandshake(upstream, new HandshakeTranscript().snapshot()).then((result) => this.host.handshakeFinished?.(this, result));
      return;
    }
    this.upstream = upstream;
    this.slot = slotOf(upstream);
    if (this.handshake.done) this.slot?.release();
    if (!this.openOkSent) {
      this.openOkSent = true;
      this.host.sendControl(encodeOpenOk(this.id));
      this.startSilence();
      if (this.redial && !this.spoke) {
        this.park = setTimeout(() => this.parkSilentViewer(), this.host.viewerParkMs ?? VIEWER_PARK_MS);
        this.park.unref?.();
      }
    }
    const onData = (chunk: Buffer) => this.onUpstreamData(chunk, null);
    const reader = blockReaderOf(upstream);
    const onEnd = () => this.end(CloseCode.ended, "The console ended.");
    const onError = (err: NodeJS.ErrnoException) =>
      this.end(CloseCode.upstreamFailed, `The console connection failed: ${err.code ?? err.message}.`);
    if (reader) {
      // Reads go to blocks from now on; what the opener put back (unshift) is read out first.
      this.reader = reader;
      reader.attach({ data: (segment, block) => this.onUpstreamData(segment, block), room: () => this.maybeResume() }, this.host.windowBytes);
    }
    // With a block reader, console bytes come through its sink only ('data' would repeat the drain below).
    if (!reader) upstream.on("data", onData);
    upstream.once("end", onEnd);
    upstream.once("error", onError);
    upstream.once("close", onEnd);
    this.detach = () => {
      reader?.detach();
      this.reader = undefined;
      upstream.off("data", onData);
      upstream.off("end", onEnd);
      upstream.off("error", onError);
      upstream.off("close", onEnd);
    };
    for (const bytes of this.early) this.writeUp(bytes);
    this.early = [];
    // Openers may hand over a paused socket (with bytes put back by unshift): with a block reader
    // those are read out here, ahead of any block; then the socket flows.
    if (reader) {
      for (let chunk: Buffer | null; !this.closed && (chunk = upstream.read() as Buffer | null) !== null; ) this.onUpstreamData(chunk, null);
      if (this.closed || this.upstream !== upstream) return; // failed or parked meanwhile: the socket is not this stream's any more
    }
    upstream.resume();
  }

  /**
   * The server's greeting is known from an earlier console: the viewer gets it now, and `open`
   * (the dial, in a handshake turn) runs once the viewer has answered it. The server's own
   * greeting is then checked against it and not sent again.
   */
  greetEarly(greeting: Buffer, open: () => void): void {
    if (this.closed) return;
    this.expectedGreeting = greeting;
    this.deferredOpen = open;
    this.openOkSent = true;
    this.host.sendControl(encodeOpenOk(this.id));
    this.pending.push(greeting);
    this.pendingBlocks.push(null);
    this.pendingBytes += greeting.length;
    this.host.ready(this);
    this.startSilence();
  }

  /** The console could not be opened. */
  refuse(code: number, reason: string): void {
    if (this.closed) return;
    // After an early greeting the edge has OPEN_OK already: the stream ends with CLOSE instead.
    if (this.openOkSent) return this.fail(code, reason);
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
    let copy = Buffer.from(bytes);
    if (!this.spoke) {
      // The viewer's version goes to the server whole, so that the connector can always take the
      // handshake over after it (a part of a version could not be completed safely).
      this.unspoken.push(copy);
      this.unspokenBytes += copy.length;
      if (this.unspokenBytes < VERSION_BYTES) return;
      this.spoke = true;
      clearTimeout(this.silence);
      clearTimeout(this.park);
      copy = Buffer.concat(this.unspoken);
      this.unspoken = [];
    }
    this.handshake.fromClient(copy);
    if (this.upstream) this.writeUp(copy);
    else this.early.push(copy);
    const open = this.deferredOpen;
    this.deferredOpen = null;
    open?.();
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

  /** `block`: the read block `chunk` points into, released once its bytes are copied out (or dropped). */
  private onUpstreamData(chunk: Buffer, block: Block | null): void {
    if (this.closed) return block?.release();
    if (!this.handshake.done) this.transcript.fromServer(chunk);
    this.handshake.fromServer(chunk);
    if (this.serverGreeting.length < VERSION_BYTES) {
      const head = chunk.subarray(0, VERSION_BYTES - this.serverGreeting.length);
      this.serverGreeting = Buffer.concat([this.serverGreeting, head]);
      if (this.serverGreeting.length === VERSION_BYTES) this.host.greeted?.(this, this.serverGreeting);
      if (this.expectedGreeting) {
        // The viewer has a greeting already: the server's own is checked, not sent again.
        chunk = chunk.subarray(head.length);
        if (this.serverGreeting.length < VERSION_BYTES) return block?.release();
        const expected = this.expectedGreeting;
        this.expectedGreeting = null;
        if (!this.greetingStillFits(expected)) {
          // E.g. a server that refuses the address answers "RFB 003.003" with a reason instead.
          const [now, before] = [this.serverGreeting, expected].map((g) => g.toString("latin1").trim().replace(/[^\x20-\x7e]/g, "?"));
          block?.release();
          return this.fail(CloseCode.upstreamFailed, `The VNC server now greets with ${now}, not ${before}: open the console again.`);
        }
        if (chunk.length === 0) return block?.release();
      }
    }
    this.pending.push(chunk);
    this.pendingBlocks.push(block);
    this.pendingBytes += chunk.length;
    // Out of credit, or out of read blocks (a stream holds at most a window of them): stop reading.
    if (this.pendingBytes + READ_CHUNK_BYTES > this.sendCredit || (this.reader && !this.reader.hasRoom)) this.upstream?.pause();
    this.host.ready(this);
  }

  /**
   * After an early greeting: the viewer chose its version from the greeting it got; any server
   * accepts a version up to its own, so only a server that went back to an older one is a problem.
   */
  private greetingStillFits(expected: Buffer): boolean {
    if (this.serverGreeting.equals(expected)) return true;
    const server = rfbMinor(this.serverGreeting);
    const asked = this.transcript.snapshot().client.subarray(0, VERSION_BYTES);
    const viewer = rfbMinor(asked);
    return server !== null && viewer !== null && viewer <= server;
  }

  private watchHandshake(): RfbHandshake {
    return new RfbHandshake(() => {
      this.slot?.release();
      this.transcript.clear();
    });
  }

  /**
   * The viewer has not answered the first server's greeting yet: finish that connection (it gives
   * its handshake turn back) and dial again once the viewer answers, as `greetEarly` does.
   */
  private parkSilentViewer(): void {
    const upstream = this.upstream;
    if (this.closed || this.spoke || !upstream || !this.redial || this.handshake.done) return;
    if (this.serverGreeting.length < VERSION_BYTES) return; // the greeting is not even whole: wait
    this.handOver(upstream);
    this.upstream = null;
    this.expectedGreeting = this.serverGreeting;
    this.serverGreeting = Buffer.alloc(0);
    this.handshake = this.watchHandshake();
    this.transcript = new HandshakeTranscript();
    this.deferredOpen = this.redial;
  }

  /** Gives the upstream to the finisher, with this console's turn, which it returns when done. */
  private handOver(upstream: Duplex): void {
    this.detach?.();
    this.detach = null;
    const slot = this.slot;
    this.slot = undefined;
    void finishHandshake(upstream, this.transcript.snapshot()).then((result) => {
      slot?.release();
      this.host.handshakeFinished?.(this, result);
    });
  }

  private startSilence(): void {
    if (this.spoke) return;
    const ms = this.host.viewerSilenceMs ?? VIEWER_SILENCE_MS;
    this.silence = setTimeout(() => {
      // A handshake the watch saw end without the viewer (an upstream that is not RFB) holds nothing.
      if (this.closed || this.spoke || this.handshake.done) return;
      this.fail(CloseCode.tooSlow, `The viewer said nothing within ${Math.round(ms / 1000)} s of the VNC server's greeting.`);
    }, ms);
    this.silence.unref?.();
  }

  private maybeResume(): void {
    if (
      this.upstream?.isPaused() &&
      !this.ending &&
      !this.closed &&
      this.pendingBytes + READ_CHUNK_BYTES <= this.sendCredit &&
      (this.reader?.hasRoom ?? true)
    ) {
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
      if (n === head.length) {
        this.pending.shift();
        // Copied into the message: the read block may be read into again.
        this.pendingBlocks.shift()?.release();
      } else this.pending[0] = head.subarray(n);
    }
    this.pendingBytes -= size;
  }

  private writeUp(bytes: Buffer): void {
    if (!this.handshake.done) this.transcript.fromClient(bytes);
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
    clearTimeout(this.silence);
    clearTimeout(this.park);
    this.deferredOpen = null;
    this.abort.abort();
    const upstream = this.upstream;
    if (upstream && !this.handshake.done && !upstream.destroyed) {
      // The viewer is gone mid-handshake: the connector finishes the server's side, in this
      // console's handshake turn, so that the server sees a connection that authenticated.
      this.handOver(upstream);
    } else {
      this.slot?.release();
      upstream?.destroy();
    }
    this.transcript.clear();
    this.unspoken = [];
    for (const block of this.pendingBlocks) block?.release();
    this.pending = [];
    this.pendingBlocks = [];
    this.pendingBytes = 0;
    this.early = [];
  }
}
