/**
 * The one owner of the site object's console streams: a stream opens, takes its connector's frames
 * and its viewer's messages, closes and is restored after hibernation here and nowhere else, and
 * its state is written to its socket's attachment here.
 *
 * Writes are deferred: a stream's counters change with every message, but the attachment only
 * needs to be right when the object hibernates. A pending timer keeps an object from hibernating,
 * so writing dirty streams PERSIST_DELAY_MS after their first change is exact at hibernation and
 * costs at most one write per stream per PERSIST_DELAY_MS, whatever the traffic.
 */
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeClose, encodeJson, type Frame, FrameType } from "../../shared/protocol/frames.ts";
import { OPEN_TIMEOUT_MS, RFB_HANDSHAKE_TIMEOUT_MS, VIEWER_NOTICE_IDLE_WARNING } from "../../shared/protocol/limits.ts";
import { ackDeadline } from "./open-watch.ts";
import { VIEWER_KIND, type ViewerAttachment, ViewerStream, newFlow } from "../relay/viewer-stream.ts";
import type { ConnectorSocket } from "./connector-socket.ts";
import { closeQuietly } from "../relay/sockets.ts";
import { StreamFault } from "../relay/stream-fault.ts";
import { UnprovenLedger } from "../relay/unproven-ledger.ts";

export const PERSIST_DELAY_MS = 1000;
/** The idle warning goes out this long before an idle console is closed. */
export const IDLE_WARNING_MS = 60_000;
/** The hibernation tag of viewer sockets (its value predates the glossary's "viewer"; sockets carry it). */
export const VIEWER_TAG = "browser";

/** The frames a connector sends about one stream. */
export type StreamFrame = Extract<
  Frame,
  { type: typeof FrameType.data | typeof FrameType.credit | typeof FrameType.openOk | typeof FrameType.openAck | typeof FrameType.openError | typeof FrameType.close }
>;

export interface StreamEnd {
  stream: ViewerStream<ConnectorSocket>;
  code: number;
  reason: string;
}

export interface OpenRequest {
  connector: ConnectorSocket;
  hypervisor: string;
  vm: string;
  user: string;
  userId?: string;
  viewOnly: boolean;
  mode: ViewerAttachment["mode"];
  subprotocol: string | null;
  linkId?: string;
  /** A share link's viewer who was let in by name, and the request that let them in (link-joins.ts). */
  viewerName?: string;
  joinId?: string;
}

/**
 * What else sees a stream's life and bytes (the site's recordings): called after the stream took
 * them, and never waited on.
 */
export interface StreamTap {
  opened(stream: ViewerStream<ConnectorSocket>): void;
  down(stream: ViewerStream<ConnectorSocket>, bytes: Uint8Array): void;
  /** `handshakeWasDone`: ServerInit had passed before this viewer message. */
  up(stream: ViewerStream<ConnectorSocket>, bytes: Uint8Array, handshakeWasDone: boolean): void;
  ended(stream: ViewerStream<ConnectorSocket>, code: number, reason: string): void;
}

/** What the audit trail needs of a console that was open when the edge restarted. */
export interface LostConsole {
  stream: number;
  user: string;
  hypervisor: string;
  vm: string;
  viewOnly: boolean;
  openedAt: number;
  linkId?: string;
  /** Its recording, if it was recorded. */
  recording?: string;
  /** Filled in by `restore`: why it ended, and the close code its viewer got (none: 4503). */
  reason?: string;
  code?: number;
}

export class StreamBook {
  private readonly ctx: DurableObjectState;
  private readonly sql: SqlStorage;
  /** Called once for every stream that ends, however it ends (for the audit trail). */
  private readonly onEnd: (end: StreamEnd) => void;
  private readonly byId = new Map<number, ViewerStream<ConnectorSocket>>();
  private readonly bySocket = new Map<WebSocket, ViewerStream<ConnectorSocket>>();
  private nextId = (Math.random() * 0x7fffffff) >>> 0;
  private persistTimer: ReturnType<typeof setTimeout> | null = null;
  /** The edge's idle timeout (IDLE_TIMEOUT_SECONDS), or null when off. */
  private readonly idleMs: number | null;
  /** What the site's plain viewers hold unproven, live and closed-but-not-gone (see the module). */
  readonly unproven = new UnprovenLedger();
  /** Set by the site object: the recordings. */
  tap: StreamTap | null = null;

  constructor(ctx: DurableObjectState, idleMs: number | null, onEnd: (end: StreamEnd) => void) {
    this.ctx = ctx;
    this.sql = ctx.storage.sql;
    this.idleMs = idleMs;
    this.onEnd = onEnd;
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: number): ViewerStream<ConnectorSocket> | undefined {
    return this.byId.get(id);
  }

  forSocket(ws: WebSocket): ViewerStream<ConnectorSocket> | undefined {
    return this.bySocket.get(ws);
  }

  all(): ViewerStream<ConnectorSocket>[] {
    return [...this.byId.values()];
  }

  where(predicate: (a: ViewerAttachment) => boolean): ViewerStream<ConnectorSocket>[] {
    return this.all().filter((s) => predicate(s.attachment));
  }

  /** Accepts a viewer socket and asks the connector to open the console; returns the client end. */
  open(req: OpenRequest): { client: WebSocket; stream: ViewerStream<ConnectorSocket> } {
    const pair = new WebSocketPair();
    const now = Date.now();
    const attachment: ViewerAttachment = {
      kind: VIEWER_KIND,
      stream: this.allocateId(),
      connectorId: req.connector.id,
      hypervisor: req.hypervisor,
      vm: req.vm,
      user: req.user,
      ...(req.userId ? { userId: req.userId } : {}),
      mode: req.mode,
      subprotocol: req.subprotocol,
      openedAt: now,
      viewOnly: req.viewOnly,
      ...(req.linkId ? { linkId: req.linkId } : {}),
      ...(req.viewerName ? { viewerName: req.viewerName } : {}),
      ...(req.joinId ? { joinId: req.joinId } : {}),
      upstreamOpen: false,
      deadline: now + OPEN_TIMEOUT_MS,
      ackBy: ackDeadline(req.connector, now),
      lastInputAt: now,
      idleWarnedAt: null,
      flow: newFlow(),
      rfb: null,
    };
    this.ctx.acceptWebSocket(pair[1], [VIEWER_TAG]);
    const stream = new ViewerStream(pair[1], attachment, req.connector, this.idleMs !== null, this.unproven);
    // Before any console byte: a recorded console's viewer hears so first (it sets `recording`).
    this.tap?.opened(stream);
    stream.persist();
    // Remembered in storage too: if the edge restarts, the sockets are gone but the audit trail
    // must still close what was open (see `restore`).
    const lost: LostConsole = {
      stream: attachment.stream,
      user: attachment.user,
      hypervisor: attachment.hypervisor,
      vm: attachment.vm,
      viewOnly: attachment.viewOnly,
      openedAt: now,
      ...(attachment.linkId ? { linkId: attachment.linkId } : {}),
      ...(attachment.recording ? { recording: attachment.recording } : {}),
    };
    this.sql.exec("INSERT OR REPLACE INTO open_consoles (stream, json) VALUES (?, ?)", attachment.stream, JSON.stringify(lost));
    this.add(stream);
    req.connector.queue(encodeJson(FrameType.open, stream.id, { hypervisor: req.hypervisor, vm: req.vm }));
    return { client: pair[0], stream };
  }

  /** OPEN_OK: the console is connected; now the RFB handshake has its own deadline. */
  upstreamOpened(stream: ViewerStream<ConnectorSocket>): void {
    if (stream.attachment.upstreamOpen) return;
    stream.attachment.upstreamOpen = true;
    stream.attachment.ackBy = null;
    stream.attachment.deadline = stream.handshakeDone ? null : Date.now() + RFB_HANDSHAKE_TIMEOUT_MS;
    stream.persist();
  }

  /** OPEN_ACK, or the connector showed life otherwise: its acknowledgement is no longer watched. */
  acknowledged(stream: ViewerStream<ConnectorSocket>): void {
    if (stream.attachment.ackBy == null) return;
    stream.attachment.ackBy = null;
    stream.persist();
  }

  /** Streams whose connector has not acknowledged OPEN by its deadline. */
  unacknowledged(now: number): ViewerStream<ConnectorSocket>[] {
    return this.all().filter((s) => !s.attachment.upstreamOpen && s.attachment.ackBy != null && s.attachment.ackBy <= now);
  }

  /**
   * Moves a console nothing has flowed on to another connector: CLOSE to the one that did not
   * answer (should it wake, it drops the console rather than open it), OPEN to `to`, same id
   * (ids are unique across the site's tunnels). Frames the first one still sends are ignored.
   */
  reroute(stream: ViewerStream<ConnectorSocket>, to: ConnectorSocket, code: number, reason: string): void {
    const from = stream.connector;
    const a = stream.attachment;
    from.streams.delete(stream.id);
    from.queue(encodeClose(FrameType.close, stream.id, code, reason));
    stream.connector = to;
    to.streams.add(stream.id);
    a.connectorId = to.id;
    a.ackBy = ackDeadline(to, Date.now());
    to.queue(encodeJson(FrameType.open, stream.id, { hypervisor: a.hypervisor, vm: a.vm }));
    stream.persist();
  }

  /**
   * A stream's frame from `connector`. Frames for a stream it no longer carries (the viewer closed
   * it, and its CLOSE is on the way; or it moved to another connector) are ignored. Returns true
   * when the frame met an OPEN's acknowledgement deadline, which the alarm was set for.
   */
  fromConnector(connector: ConnectorSocket, frame: StreamFrame): boolean {
    const stream = this.byId.get(frame.stream);
    if (!stream || stream.connector !== connector) return false;
    switch (frame.type) {
      case FrameType.data:
        this.apply(stream, (s) => {
          s.down(frame.bytes);
          this.tap?.down(s, frame.bytes);
        });
        return false;
      case FrameType.credit:
        this.apply(stream, (s) => s.credit(frame.bytes));
        return false;
      case FrameType.openOk:
      case FrameType.openAck: {
        const met = !stream.attachment.upstreamOpen && stream.attachment.ackBy != null;
        if (frame.type === FrameType.openOk) this.upstreamOpened(stream);
        else this.acknowledged(stream);
        return met;
      }
      case FrameType.openError:
      case FrameType.close:
        // Codes outside the application range are not the connector's to give a viewer.
        this.close(stream, frame.code >= 4000 && frame.code <= 4999 ? frame.code : CloseCode.upstreamFailed, frame.reason, { tellConnector: false });
        return false;
    }
  }

  /**
   * A message from a stream's viewer: credit (text, credit viewers) or input. Returns true when it
   * was input after an idle warning: with a timeout under two minutes the next warning is due
   * before the alarm the warning left (the old close). Once per warning, not per message.
   */
  fromViewer(stream: ViewerStream<ConnectorSocket>, message: string | ArrayBuffer): boolean {
    const warned = stream.attachment.idleWarnedAt !== null;
    this.apply(stream, (s) => {
      if (typeof message === "string") return s.viewerText(message);
      const handshakeWasDone = s.handshakeDone;
      const bytes = new Uint8Array(message);
      s.viewerBytes(bytes);
      this.tap?.up(s, bytes, handshakeWasDone);
    });
    return warned && stream.attachment.idleWarnedAt === null;
  }

  /**
   * Runs one event's work on a stream (bytes or credit either way); a fault the stream raises
   * closes it with that code and reason.
   */
  private apply(stream: ViewerStream<ConnectorSocket>, work: (s: ViewerStream<ConnectorSocket>) => void): void {
    try {
      work(stream);
      this.touched(stream);
    } catch (err) {
      if (!(err instanceof StreamFault)) throw err;
      this.close(stream, err.code, err.message);
    }
  }

  /** After any traffic on a stream: clear a met deadline, and write its state before hibernating. */
  private touched(stream: ViewerStream<ConnectorSocket>): void {
    const a = stream.attachment;
    if (a.deadline !== null && a.upstreamOpen && stream.handshakeDone) {
      a.deadline = null;
      stream.persist();
      return;
    }
    if (!stream.dirty || this.persistTimer !== null) return;
    this.persistTimer = setTimeout(() => this.persistDirty(), PERSIST_DELAY_MS);
  }

  /** Writes every dirty stream's state now (the timer does this; tests call it to skip the wait). */
  persistDirty(): void {
    if (this.persistTimer !== null) clearTimeout(this.persistTimer);
    this.persistTimer = null;
    for (const s of this.byId.values()) if (s.dirty) s.persist();
  }

  /**
   * Ends a stream: closes the viewer's socket (unless it is already gone), tells the connector
   * unless the connector ended it, and reports it once.
   */
  close(stream: ViewerStream<ConnectorSocket>, code: number, reason: string, { tellConnector = true, viewerGone = false } = {}): void {
    if (this.byId.get(stream.id) !== stream) return;
    this.byId.delete(stream.id);
    this.bySocket.delete(stream.socket);
    stream.connector.streams.delete(stream.id);
    if (tellConnector) stream.connector.queue(encodeClose(FrameType.close, stream.id, code, reason));
    // What the runtime may still queue for it stays counted until its socket is really gone.
    const held = stream.ended();
    if (!viewerGone && held > 0) {
      stream.attachment.cut = held;
      stream.persist();
      this.unproven.linger(stream.socket, held);
    }
    // Closing answers a viewer's own close frame too, so its client does not wait for a timeout.
    closeQuietly(stream.socket, code, reason);
    this.sql.exec("DELETE FROM open_consoles WHERE stream = ?", stream.id);
    this.tap?.ended(stream, code, reason);
    this.onEnd({ stream, code, reason });
  }

  /**
   * A viewer socket reported close or error: the runtime let go of it. Ends its stream, if it still
   * had one, and releases what a closed plain viewer was still counted for.
   */
  socketGone(ws: WebSocket, code: number, reason: string): ViewerStream<ConnectorSocket> | undefined {
    this.unproven.released(ws);
    const stream = this.forSocket(ws);
    // 1000 answers the viewer's close frame; the audit keeps what the viewer said.
    if (stream) this.close(stream, 1000, reason ? `viewer closed the console (${code} ${reason})` : `viewer closed the console (${code})`, { viewerGone: true });
    return stream;
  }

  /** Closes the streams a predicate picks; returns how many. */
  closeWhere(predicate: (a: ViewerAttachment) => boolean, code: number, reason: string): number {
    const picked = this.where(predicate);
    for (const s of picked) this.close(s, code, reason);
    return picked.length;
  }

  /**
   * Streams whose time is up: no OPEN answer, no finished RFB handshake, or no input for the idle
   * timeout (warned a minute before, where the viewer can be told).
   */
  overdue(now: number): void {
    for (const s of this.all()) {
      this.idleCheck(s, now);
      const { deadline, upstreamOpen } = s.attachment;
      if (deadline === null || deadline > now || !this.byId.has(s.id)) continue;
      if (!upstreamOpen) {
        this.close(s, CloseCode.upstreamTimeout, "The site's connector did not open the console in time: try again.");
      } else {
        this.close(s, CloseCode.upstreamTimeout, "The console did not finish its RFB handshake in time: open it again.");
      }
    }
  }

  private idleCheck(s: ViewerStream<ConnectorSocket>, now: number): void {
    if (this.idleMs === null || !s.idleWatched) return;
    const a = s.attachment;
    const closesAt = a.lastInputAt + this.idleMs;
    if (now >= closesAt) {
      const minutes = Math.round(this.idleMs / 60_000);
      this.close(s, CloseCode.idle, `This console closed after ${minutes >= 1 ? `${minutes} min` : `${Math.round(this.idleMs / 1000)} s`} without input.`);
    } else if (now >= closesAt - IDLE_WARNING_MS && a.idleWarnedAt === null) {
      a.idleWarnedAt = now;
      s.notify({ type: VIEWER_NOTICE_IDLE_WARNING, closesAt: new Date(closesAt).toISOString() });
      s.persist();
    }
  }

  /** The next time a stream needs the alarm: a deadline, an idle warning or an idle close. */
  nextDeadline(): number | null {
    let next: number | null = null;
    const consider = (t: number | null) => {
      if (t !== null && (next === null || t < next)) next = t;
    };
    for (const s of this.byId.values()) {
      const a = s.attachment;
      consider(a.deadline);
      if (!a.upstreamOpen) consider(a.ackBy ?? null);
      if (this.idleMs !== null && s.idleWatched) {
        const closesAt = a.lastInputAt + this.idleMs;
        consider(a.idleWarnedAt === null ? Math.max(a.openedAt, closesAt - IDLE_WARNING_MS) : closesAt);
      }
    }
    return next;
  }

  /**
   * Rebuilds the streams from the sockets that survived hibernation. `connectorOf` finds a live
   * connector by id; a stream whose connector is gone, or that cannot be rebuilt, is closed and
   * reported. The CLOSEs this queues for live connectors are the caller's to flush.
   */
  restore(connectorOf: (id: string) => ConnectorSocket | undefined): LostConsole[] {
    const ends = new Map<number, { code: number; reason: string }>();
    // Every console that cannot carry on ends on both sides: a live connector that is not told
    // keeps its upstream (XenServer then refuses the VM's next console with 503).
    const abandon = (ws: WebSocket, att: Partial<ViewerAttachment> | null, code: number, reason: string) => {
      closeQuietly(ws, code, reason);
      if (typeof att?.stream !== "number") return;
      ends.set(att.stream, { code, reason });
      const connector = typeof att.connectorId === "string" ? connectorOf(att.connectorId) : undefined;
      connector?.queue(encodeClose(FrameType.close, att.stream, code, reason));
    };
    for (const ws of this.ctx.getWebSockets(VIEWER_TAG)) {
      const att = ws.deserializeAttachment() as ViewerAttachment | null;
      if (att?.kind !== VIEWER_KIND || !att.flow) {
        abandon(ws, att, CloseCode.internal, "The console was interrupted: open it again.");
        continue;
      }
      if (att.cut !== undefined) {
        // Closed by the edge, not yet gone: still counted (the close may sit behind its unread data).
        this.unproven.linger(ws, att.cut);
        continue;
      }
      const connector = connectorOf(att.connectorId);
      if (!connector) {
        abandon(ws, att, CloseCode.connectorOffline, "The site's connector went offline: try again in a moment.");
        continue;
      }
      try {
        this.add(new ViewerStream(ws, att, connector, this.idleMs !== null, this.unproven));
      } catch (err) {
        if (!(err instanceof StreamFault)) throw err;
        abandon(ws, att, err.code, err.message);
      }
    }
    // Consoles storage remembers but no socket carries any more: the edge restarted (a deploy or
    // a crash) and their sockets closed without an event. Closed streams above count too.
    const lost: LostConsole[] = [];
    for (const row of this.sql.exec<{ stream: number; json: string }>("SELECT stream, json FROM open_consoles").toArray()) {
      if (this.byId.has(row.stream)) continue;
      const end = ends.get(row.stream) ?? { code: CloseCode.connectorOffline, reason: "The edge restarted (a deploy or a crash): open the console again." };
      lost.push({ ...(JSON.parse(row.json) as LostConsole), ...end });
      this.sql.exec("DELETE FROM open_consoles WHERE stream = ?", row.stream);
    }
    return lost;
  }

  private add(stream: ViewerStream<ConnectorSocket>): void {
    this.byId.set(stream.id, stream);
    this.bySocket.set(stream.socket, stream);
    stream.connector.streams.add(stream.id);
  }

  private allocateId(): number {
    do {
      this.nextId = (this.nextId + 1) >>> 0;
    } while (this.nextId === 0 || this.byId.has(this.nextId));
    return this.nextId;
  }
}
