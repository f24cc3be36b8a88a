/**
 * One viewer socket paired with one stream on a connector: the credit accounting for both
 * directions and the RFB tracker (view-only filter, handshake, fences). Everything it needs after
 * the object wakes from hibernation is in `attachment.flow` and `attachment.rfb`, written to the
 * socket's attachment by the site's stream book (never on every message).
 *
 * All byte counts are running totals since the stream opened, so the invariants are plain
 * comparisons and survive any number of wakes exactly:
 *   connector may send   down ≤ downCredited + window
 *   we may send up       up   ≤ upCredited + window
 */
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { concatBytes, encodeCredit, encodeData } from "../../shared/protocol/frames.ts";
import {
  CREDIT_CHUNK_BYTES,
  MAX_DATA_BYTES,
  PLAIN_UNPROVEN_LIMIT_BYTES,
  STREAM_WINDOW_BYTES,
  UP_QUEUE_LIMIT_BYTES,
} from "../../shared/protocol/limits.ts";
import { RfbTracker, type RfbTrackerState } from "./rfb/tracker.ts";
import { StreamFault } from "./stream-fault.ts";
import { UnprovenLedger } from "./unproven-ledger.ts";

/** How a viewer returns credit. */
export type ViewerMode =
  /** subprotocol porthole.credit.v1: text messages with byte counts it has consumed. */
  | "credit"
  /** a plain RFB-over-WebSocket client: consumption is proven by RFB fences (see rfb/fences.ts). */
  | "plain";

export interface FlowState {
  /** Connector → viewer bytes received on the stream. */
  down: number;
  /** Credit returned to the connector for them. */
  downCredited: number;
  /** Viewer → connector bytes sent on the stream (after filtering). */
  up: number;
  /** Credit the connector returned for them. */
  upCredited: number;
  /** Input waiting for the connector's credit (at most UP_QUEUE_LIMIT_BYTES). */
  upQueue: Uint8Array[];
  /**
   * Plain viewers: console bytes proven processed (fence echoes). Kept across hibernation: a
   * wake must not forgive what a viewer that never proves anything was sent before it.
   */
  proven?: number;
}

/**
 * The `kind` of a viewer socket's attachment. Its value predates the glossary's "viewer" and is
 * kept: attachments of hibernated sockets carry it.
 */
export const VIEWER_KIND = "browser";

export interface ViewerAttachment {
  kind: typeof VIEWER_KIND;
  stream: number;
  connectorId: string;
  hypervisor: string;
  vm: string;
  /** Who opened it: a user name, or `link:<id>` for a share link. */
  user: string;
  /** The user's stable id (absent on share-link consoles): access ends by id, not by name. */
  userId?: string;
  mode: ViewerMode;
  /** The subprotocol the edge selected, if any. */
  subprotocol: string | null;
  openedAt: number;
  /** Input is filtered out at the edge (viewer role, or a view-only link). */
  viewOnly: boolean;
  /** Set when opened through a share link. */
  linkId?: string;
  /** The name a link's viewer gave when let in (≤ JOIN_NAME_MAX characters: attachments are small), and its join request. */
  viewerName?: string;
  joinId?: string;
  /** The recording of this console, if it is recorded (worker/site/recording-book.ts): its audit rows name it. */
  recording?: string;
  /** The connector answered OPEN_OK. */
  upstreamOpen: boolean;
  /** Until then the connector must answer OPEN; then the RFB handshake must finish. */
  deadline: number | null;
  /** Until then the connector must acknowledge OPEN, or the console goes elsewhere (worker/site/open-watch.ts). */
  ackBy?: number | null;
  /** The viewer's last input (key, pointer, clipboard), for the idle timeout; opening counts. */
  lastInputAt: number;
  /** When the idle warning was sent for the current quiet spell (null: not yet). */
  idleWarnedAt: number | null;
  flow: FlowState;
  /** The RFB tracker's state (< 1 KiB: see worker/relay/rfb/snapshot.ts). */
  rfb: RfbTrackerState | null;
  /**
   * Set when the edge closed this plain viewer while it held this many unproven bytes: the socket
   * only lingers until the runtime reports it gone, counted by the site's UnprovenLedger.
   */
  cut?: number;
}

/**
 * What a stream needs of the tunnel it rides on: somewhere to queue its frames for the connector.
 * The relay owns this interface and the site implements it (`site/connector-socket.ts`), so the
 * relay never depends on the site; the site sends what was queued when the event ends.
 */
export interface TunnelOutbox {
  queue(frame: Uint8Array): void;
}

export function newFlow(): FlowState {
  return { down: 0, downCredited: 0, up: 0, upCredited: 0, upQueue: [], proven: 0 };
}

export class ViewerStream<T extends TunnelOutbox = TunnelOutbox> {
  /** The viewer's socket. */
  readonly socket: WebSocket;
  readonly attachment: ViewerAttachment;
  /** Changes only before anything flowed, when an OPEN went unanswered (worker/site/open-watch.ts). */
  connector: T;
  private readonly rfb: RfbTracker;
  private readonly flow: FlowState;
  /** Plain mode: console bytes the viewer has proven processed (fence echoes). */
  private proven: number;
  private upQueued = 0;
  /** State changed since the stream book last wrote the attachment. */
  dirty = false;

  /** What all plain viewers of the site hold unproven (this one's share is `unproven`). */
  private readonly ledger: UnprovenLedger;

  /** `watchInput`: count the viewer's input for the idle timeout. */
  constructor(socket: WebSocket, attachment: ViewerAttachment, connector: T, watchInput = false, ledger = new UnprovenLedger()) {
    this.socket = socket;
    this.attachment = attachment;
    this.connector = connector;
    this.flow = attachment.flow;
    this.ledger = ledger;
    const mode = { viewOnly: attachment.viewOnly, fenceCredit: attachment.mode === "plain", watchInput };
    this.rfb = new RfbTracker(mode, attachment.rfb ?? undefined);
    // Attachments from before `proven` was kept: what was credited (at most one message more).
    this.proven = Math.min(this.flow.down, this.flow.proven ?? this.flow.downCredited);
    ledger.adjust(this.unproven);
    this.upQueued = this.flow.upQueue.reduce((n, b) => n + b.length, 0);
  }

  get id(): number {
    return this.attachment.stream;
  }

  get bytesDown(): number {
    return this.flow.down;
  }

  get bytesUp(): number {
    return this.flow.up;
  }

  /** Plain viewers: bytes sent and not proven processed, which the runtime may still hold for it. */
  get unproven(): number {
    return this.attachment.mode === "plain" ? this.flow.down - this.proven : 0;
  }

  /** The stream ended: its unproven bytes leave the live count (the stream book may keep them lingering). */
  ended(): number {
    const held = this.unproven;
    this.ledger.adjust(-held);
    this.proven = this.flow.down;
    return held;
  }

  /**
   * The idle timeout applies: a full-control console whose input the tracker can still count.
   * View-only viewers send no input by design; a stream whose messages can no longer be framed
   * cannot be told idle from busy, so it is never timed out.
   */
  get idleWatched(): boolean {
    return !this.attachment.viewOnly && this.rfb.inputWatched;
  }

  /** Sends a notice to a credit viewer (Porthole's page or `porthole listen`); plain viewers get none. */
  notify(notice: Record<string, unknown>): boolean {
    if (this.attachment.mode !== "credit") return false;
    try {
      this.socket.send(JSON.stringify(notice));
      return true;
    } catch {
      return false;
    }
  }

  /** ServerInit has passed, or the tracker can no longer tell (a security type it cannot follow). */
  get handshakeDone(): boolean {
    return this.rfb.handshakeDone || this.rfb.framing === "lost";
  }

  /** Where ServerInit begins in the console's bytes (see RfbTracker.serverInitAt), once known. */
  get serverInitAt(): number | undefined {
    return this.rfb.serverInitAt;
  }

  /** Writes what must survive hibernation into the attachment (called by the stream book). */
  persist(): void {
    if (this.rfb.dirty) {
      this.attachment.rfb = this.rfb.snapshot();
      this.rfb.clearDirty();
    }
    this.dirty = false;
    try {
      this.socket.serializeAttachment(this.attachment);
    } catch {
      // The socket is closing: nothing to restore.
    }
  }

  /** Console bytes from the connector, on their way to the viewer. */
  down(bytes: Uint8Array): void {
    const flow = this.flow;
    if (flow.down + bytes.length - flow.downCredited > STREAM_WINDOW_BYTES) {
      throw new StreamFault(CloseCode.internal, "connector overran the stream window");
    }
    if (this.attachment.mode === "plain") this.admitPlain(bytes.length);
    flow.down += bytes.length;
    this.dirty = true;
    const parts = this.rfb.fromServer(bytes);
    // A fence between two parts: one message all the same (one copy of the chunk costs less than
    // two more sends through the runtime, and the viewer handles one event instead of three).
    if (parts.length > 0) this.socket.send(parts.length === 1 ? parts[0]! : concatBytes(parts));
    const held = this.rfb.takeHeldForServer();
    if (held) this.sendUp(held);
    if (this.attachment.mode === "plain") this.creditPlain(false);
  }

  /**
   * Plain viewers: credit follows what the viewer has proven (fence echoes). The bytes of the
   * console message in progress cannot be fenced until it ends, so they are credited as they are
   * forwarded. What a viewer that stopped reading can make the edge hold is therefore one window
   * beyond its last proof plus one message (a framebuffer update), and never more than
   * PLAIN_UNPROVEN_LIMIT_BYTES. A viewer that does not echo fences gets credit as forwarded and
   * is cut at that limit.
   */
  private creditPlain(proof: boolean): void {
    const flow = this.flow;
    const fenced = this.rfb.fenceCreditActive && this.rfb.framing === "exact";
    const target = fenced ? Math.min(flow.down, this.proven + this.rfb.inMessageBytes) : flow.down;
    const owed = target - flow.downCredited;
    if (owed >= CREDIT_CHUNK_BYTES || (proof && owed > 0)) {
      this.connector.queue(encodeCredit(this.id, owed));
      flow.downCredited = target;
    }
  }

  /**
   * Before `bytes` more go to a plain viewer: neither this viewer's
   * unproven bytes may pass PLAIN_UNPROVEN_LIMIT_BYTES nor all plain viewers' of the site
   * PLAIN_UNPROVEN_SITE_LIMIT_BYTES. Checked before the send, so what the runtime may hold for
   * viewers that do not read never exceeds them, and the close frame waits behind no more.
   */
  private admitPlain(bytes: number): void {
    if (this.unproven + bytes > PLAIN_UNPROVEN_LIMIT_BYTES) {
      const fenced = this.rfb.fenceCreditActive && this.rfb.framing === "exact";
      throw new StreamFault(
        CloseCode.tooSlow,
        fenced
          ? "viewer stopped reading; console closed to protect the site"
          : "this viewer cannot confirm what it received (no RFB fences, no credit): open the console in Porthole's page or with porthole listen",
      );
    }
    if (!this.ledger.admits(bytes)) {
      throw new StreamFault(CloseCode.tooSlow, "this site's viewers hold too much unread console data; console closed to protect the site");
    }
    this.ledger.adjust(bytes);
  }

  /** A text message: a credit-mode viewer has consumed that many more bytes. */
  viewerText(text: string): void {
    if (this.attachment.mode !== "credit") {
      throw new StreamFault(CloseCode.badRequest, "text messages are not part of RFB over WebSocket");
    }
    if (!/^[1-9][0-9]{0,9}$/.test(text)) throw new StreamFault(CloseCode.badRequest, "malformed credit message");
    const flow = this.flow;
    // Never pass on more than was actually sent: a viewer cannot inflate the connector's window.
    const bytes = Math.min(Number(text), flow.down - flow.downCredited);
    if (bytes === 0) return;
    flow.downCredited += bytes;
    this.dirty = true;
    this.connector.queue(encodeCredit(this.id, bytes));
  }

  /** Viewer input (keys, pointer, RFB client messages) on its way to the console. */
  viewerBytes(input: Uint8Array): void {
    // consumedInput: console bytes proven processed (our fences themselves not counted).
    const inputsBefore = this.rfb.inputs;
    const { toServer, consumedInput } = this.rfb.fromViewer(input);
    if (this.rfb.inputs !== inputsBefore) {
      this.attachment.lastInputAt = Date.now();
      this.attachment.idleWarnedAt = null;
    }
    if (consumedInput > 0) {
      const proven = Math.min(this.flow.down, this.proven + consumedInput);
      if (this.attachment.mode === "plain") this.ledger.adjust(this.proven - proven);
      this.proven = this.flow.proven = proven;
      if (this.attachment.mode === "plain") this.creditPlain(true);
    }
    this.dirty = true;
    if (toServer.length > 0) this.sendUp(toServer);
  }

  /** The connector wrote `bytes` to the console and accepts that much more. */
  credit(bytes: number): void {
    const flow = this.flow;
    // Never more than was sent: a confused connector cannot make the edge send past a window.
    flow.upCredited = Math.min(flow.up, flow.upCredited + bytes);
    this.dirty = true;
    while (flow.upQueue.length > 0 && flow.upQueue[0]!.length <= this.upCredit) {
      const next = flow.upQueue.shift()!;
      this.upQueued -= next.length;
      this.send(next);
    }
  }

  private get upCredit(): number {
    return STREAM_WINDOW_BYTES - (this.flow.up - this.flow.upCredited);
  }

  private sendUp(bytes: Uint8Array): void {
    if (this.upQueued === 0 && bytes.length <= this.upCredit) {
      this.send(bytes);
      return;
    }
    if (this.upQueued + bytes.length > UP_QUEUE_LIMIT_BYTES) {
      throw new StreamFault(CloseCode.tooMuchInput, "viewer sent more input than the console accepts");
    }
    // Copied: the runtime may reuse the message's buffer, and the queue outlives this event.
    this.flow.upQueue.push(bytes.slice());
    this.upQueued += bytes.length;
  }

  private send(bytes: Uint8Array): void {
    this.flow.up += bytes.length;
    for (let at = 0; at < bytes.length; at += MAX_DATA_BYTES) {
      this.connector.queue(encodeData(this.id, bytes.subarray(at, at + MAX_DATA_BYTES)));
    }
  }
}
