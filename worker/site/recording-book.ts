/**
 * The one owner of the site's recordings: which consoles are recorded, each recording's buffer,
 * its segments in R2, its index row and segment hashes in SQLite (docs/recording.md).
 *
 * The stream book hands it bytes and never waits on it: a segment's digest and R2 put run on a
 * promise chain of their own (kept alive with waitUntil), in order per recording. What one recorded
 * stream holds in memory, buffered and in flight, never passes HELD_LIMIT_BYTES: when storage falls
 * behind, records are dropped, a gap mark goes in, and the recording ends "incomplete".
 *
 * Hibernation: a buffer is cut into a segment FLUSH_MS after its first record at the latest; the
 * pending timer keeps the object awake until then, so the object only sleeps with nothing buffered
 * and a wake resumes from the index row. A recording whose console did not survive a restart (a
 * redeploy or a crash: no socket, no event) ends "interrupted" at the next wake; what was buffered
 * then (at most FLUSH_MS of console) is lost.
 */
import type { Recording, RecordingQuery } from "../../shared/api/types.ts";
import { VIEWER_NOTICE_RECORDED } from "../../shared/protocol/limits.ts";
import type { ViewerStream } from "../relay/viewer-stream.ts";
import type { ConnectorSocket } from "./connector-socket.ts";
import { encodeHeader, encodeMark, encodeRecord, type RecordingHeader, RecordKind, ViewerMessages } from "./recording-format.ts";
import type { SiteConfig } from "./site-config.ts";

/** A segment is cut at this size (or FLUSH_MS after its first record). */
export const SEGMENT_BYTES = 256 * 1024;
/** The most console time a crash can lose. */
export const FLUSH_MS = 3000;
/** Per recorded stream: buffered plus in-flight bytes never pass this. */
export const HELD_LIMIT_BYTES = 1024 * 1024;
/** Recordings that expire within this much of the earliest are deleted by the same alarm. */
export const EXPIRY_BATCH_MS = 60 * 60 * 1000;

type Stream = ViewerStream<ConnectorSocket>;

interface Live {
  id: string;
  stream: number;
  t0: number;
  /** Console-direction offset where ServerInit began (null: not yet known; nothing recorded yet). */
  serverFrom: number | null;
  viewer: ViewerMessages;
  buf: Uint8Array[];
  bufBytes: number;
  inFlight: number;
  /** The segments' digests and puts, in order. */
  tail: Promise<void>;
  nextSeq: number;
  chain: Uint8Array | null;
  /** Records were lost since the last record written: why (the next record is a gap mark saying so). */
  gap: string | null;
  incomplete: boolean;
}

type Row = {
  id: string;
  stream: number;
  hypervisor: string;
  vm: string;
  user: string | null;
  link_id: string | null;
  record_input: number;
  started_at: number;
  ended_at: number | null;
  last_at: number;
  state: Recording["state"];
  incomplete: number;
  bytes: number;
  segments: number;
  next_seq: number;
  chain: string;
  server_from: number | null;
  end_reason: string | null;
};

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

export function headerKey(site: string, id: string): string {
  return `${site}/${id}/header`;
}
export function segmentKey(site: string, id: string, seq: number): string {
  return `${site}/${id}/${String(seq).padStart(8, "0")}`;
}

export class RecordingBook {
  private readonly ctx: DurableObjectState;
  private readonly sql: SqlStorage;
  private readonly bucket: R2Bucket;
  private readonly config: SiteConfig;
  private readonly live = new Map<number, Live>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Storage work under way, of live and of just-ended recordings. */
  private readonly pending = new Set<Promise<void>>();
  /** Ended recordings whose last storage work is still under way: a delete waits for it. */
  private readonly finishing = new Map<string, Promise<void>>();
  /** How long a finished recording is kept (RECORDING_RETENTION_DAYS). */
  private readonly retentionMs: number;
  /** A recording ended since the alarm was last set: its expiry may be the earliest. */
  private expiryMoved = false;

  constructor(ctx: DurableObjectState, bucket: R2Bucket, config: SiteConfig, retentionDays = 30) {
    this.ctx = ctx;
    this.sql = ctx.storage.sql;
    this.bucket = bucket;
    this.config = config;
    this.retentionMs = retentionDays * 24 * 60 * 60 * 1000;
  }

  private get site(): string {
    return this.config.site ?? "site";
  }

  /** Bytes held for a recorded stream (buffered and in flight), for tests of the bound. */
  held(stream: number): number {
    const l = this.live.get(stream);
    return l ? l.bufBytes + l.inFlight : 0;
  }

  /** A console opened: recorded if the site's policy says so; its viewer is told before any console byte. */
  opened(stream: Stream): void {
    const policy = this.config.recording;
    const a = stream.attachment;
    if (policy === "off" || (policy === "links" && !a.linkId)) return;
    const recordInput = this.config.recordInput && !a.viewOnly;
    const id = `${this.site}.${hex(crypto.getRandomValues(new Uint8Array(16)))}`;
    const now = Date.now();
    const header: RecordingHeader = {
      format: 1,
      id,
      site: this.site,
      hypervisor: a.hypervisor,
      vm: a.vm,
      ...(a.linkId ? { linkId: a.linkId } : { user: a.user }),
      startedAt: new Date(now).toISOString(),
      recordInput,
    };
    this.sql.exec(
      `INSERT INTO recordings (id, stream, hypervisor, vm, user, link_id, record_input, started_at, last_at, state, chain)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'recording', '')`,
      id, a.stream, a.hypervisor, a.vm, a.linkId ? null : a.user, a.linkId ?? null, recordInput ? 1 : 0, now, now,
    );
    const live = this.track({ id, stream: a.stream, t0: now, serverFrom: null, recordInput, nextSeq: 1, chain: null, incomplete: false });
    const bytes = encodeHeader(header);
    this.enqueue(live, async () => {
      const chain = await sha256(bytes);
      await this.bucket.put(headerKey(this.site, id), bytes, { customMetadata: { chain: hex(chain) } });
      live.chain = chain;
      this.sql.exec("UPDATE recordings SET chain = ? WHERE id = ?", hex(chain), id);
    });
    a.recording = id;
    stream.notify({ type: VIEWER_NOTICE_RECORDED, input: recordInput });
  }

  /** Console bytes that went to the viewer (after the stream took them). */
  down(stream: Stream, bytes: Uint8Array): void {
    const live = this.live.get(stream.id);
    if (!live) return;
    const chunkStart = stream.bytesDown - bytes.length;
    if (live.serverFrom === null && !this.start(live, stream, chunkStart)) return;
    const from = Math.max(0, live.serverFrom! - chunkStart);
    if (from < bytes.length) this.append(live, encodeRecord(RecordKind.server, Date.now() - live.t0, bytes.subarray(from)));
  }

  /** A viewer's message, as it came (`handshakeWasDone`: ServerInit had passed before it). */
  up(stream: Stream, bytes: Uint8Array, handshakeWasDone: boolean): void {
    const live = this.live.get(stream.id);
    if (!live) return;
    // The viewer's choice can release held console bytes that contain ServerInit's start.
    if (live.serverFrom === null && !this.start(live, stream, stream.bytesDown)) return;
    if (!handshakeWasDone || live.viewer.lost) return;
    const { kept, inputs } = live.viewer.feed(bytes);
    const ms = Date.now() - live.t0;
    if (inputs > 0) this.append(live, encodeMark(ms, { mark: "input", count: inputs }));
    for (const m of kept) this.append(live, encodeRecord(RecordKind.viewer, ms, m));
    if (live.viewer.lost) this.append(live, encodeMark(ms, { mark: "viewer-unframed" }));
  }

  /** Recording starts at ServerInit, once the tracker knows where it is. */
  private start(live: Live, stream: Stream, seenUpTo: number): boolean {
    const at = stream.serverInitAt;
    if (at === undefined) return false;
    live.serverFrom = at;
    this.sql.exec("UPDATE recordings SET server_from = ? WHERE id = ?", at, live.id);
    this.append(live, encodeMark(Date.now() - live.t0, { mark: "connect" }));
    // ServerInit began in bytes already gone by (held during the handshake): the start is missing.
    if (at < seenUpTo) this.lose(live, "start");
    return true;
  }

  /** A console ended: its last segment goes out and its row says how it ended. */
  ended(stream: Stream, code: number, reason: string): void {
    const live = this.live.get(stream.id);
    if (!live) return;
    this.live.delete(stream.id);
    const now = Date.now();
    if (live.serverFrom === null) this.lose(live, "handshake");
    this.append(live, encodeMark(now - live.t0, { mark: "end", code, reason }), true);
    this.cut(live);
    this.sql.exec("UPDATE recordings SET ended_at = ?, end_reason = ?, state = ? WHERE id = ?", now, reason, live.incomplete ? "incomplete" : "complete", live.id);
    this.expiryMoved = true;
    // A failure of the last puts is only known later.
    this.enqueue(live, async () => {
      if (live.incomplete) this.sql.exec("UPDATE recordings SET state = 'incomplete', incomplete = 1 WHERE id = ?", live.id);
    });
    const last = live.tail;
    this.finishing.set(live.id, last);
    void last.finally(() => {
      if (this.finishing.get(live.id) === last) this.finishing.delete(live.id);
    });
  }

  /**
   * After a wake: recordings of streams that survived carry on from their row; the others ended
   * with the edge (a redeploy or a crash) and are marked interrupted.
   */
  restore(alive: (stream: number) => Stream | undefined): void {
    for (const row of this.sql.exec<Row>("SELECT * FROM recordings WHERE state = 'recording'").toArray()) {
      const stream = alive(row.stream);
      if (!stream || this.live.has(row.stream)) {
        this.sql.exec(
          "UPDATE recordings SET state = 'interrupted', ended_at = last_at, end_reason = ? WHERE id = ?",
          "The edge restarted (a deploy or a crash) while the console was open.",
          row.id,
        );
        this.expiryMoved = true;
        continue;
      }
      this.track({
        id: row.id,
        stream: row.stream,
        t0: row.started_at,
        serverFrom: row.server_from,
        recordInput: row.record_input === 1,
        nextSeq: row.next_seq,
        chain: row.chain ? unhex(row.chain) : null,
        incomplete: row.incomplete === 1,
      });
    }
  }

  private track(init: { id: string; stream: number; t0: number; serverFrom: number | null; recordInput: boolean; nextSeq: number; chain: Uint8Array | null; incomplete: boolean }): Live {
    const live: Live = { ...init, viewer: new ViewerMessages(init.recordInput), buf: [], bufBytes: 0, inFlight: 0, tail: Promise.resolve(), gap: null };
    this.live.set(init.stream, live);
    return live;
  }

  /**
   * Records what could not be kept: the recording ends incomplete, and its next record is a gap
   * mark saying why: "start" (ServerInit began in bytes already relayed), "handshake" (the console
   * never reached ServerInit), "behind" (the memory bound), "storage" (a put failed).
   */
  private lose(live: Live, why: string): void {
    if (!live.incomplete) this.sql.exec("UPDATE recordings SET incomplete = 1 WHERE id = ?", live.id);
    live.incomplete = true;
    live.gap ??= why;
  }

  /** `force`: the end mark goes in even over the bound (a few dozen bytes), so every recording says how it ended. */
  private append(live: Live, record: Uint8Array, force = false): void {
    if (live.gap !== null) {
      const mark = encodeMark(Date.now() - live.t0, { mark: "gap", why: live.gap });
      if (force || live.bufBytes + live.inFlight + mark.length + record.length <= HELD_LIMIT_BYTES) {
        live.gap = null;
        live.buf.push(mark);
        live.bufBytes += mark.length;
      }
    }
    if (!force && live.bufBytes + live.inFlight + record.length > HELD_LIMIT_BYTES) {
      this.lose(live, "behind");
      return;
    }
    live.buf.push(record);
    live.bufBytes += record.length;
    if (live.bufBytes >= SEGMENT_BYTES) this.cut(live);
    else if (this.timer === null) this.timer = setTimeout(() => this.flushAll(), FLUSH_MS);
  }

  /** Cuts every buffer into a segment now (the timer does this; tests call it before hibernating). */
  flushAll(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const live of this.live.values()) this.cut(live);
  }

  /** Waits for every segment under way (tests; the site's deletion). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /**
   * The site is deleted (its consoles already closed): once their last segments are written, every
   * object of the site's recordings goes too, since the index that finds them is about to.
   * Returns how many recordings there were.
   */
  async destroy(): Promise<number> {
    await this.settled();
    const count = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM recordings").one().n;
    let cursor: string | undefined;
    do {
      const page = await this.bucket.list({ prefix: `${this.site}/`, ...(cursor ? { cursor } : {}) });
      if (page.objects.length > 0) await this.bucket.delete(page.objects.map((o) => o.key));
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    return count;
  }

  private cut(live: Live): void {
    if (live.bufBytes === 0) return;
    // One copy and one hash pass per segment: the records go in after 32 bytes kept for the
    // previous chain value, so SHA-256(previous ‖ segment) needs no second buffer.
    const withChain = new Uint8Array(32 + live.bufBytes);
    let at = 32;
    for (const b of live.buf) {
      withChain.set(b, at);
      at += b.length;
    }
    const segment = withChain.subarray(32);
    live.buf = [];
    live.bufBytes = 0;
    live.inFlight += segment.length;
    const seq = live.nextSeq++;
    const site = this.site;
    this.enqueue(live, async () => {
      try {
        withChain.set(live.chain ?? new Uint8Array(32), 0);
        const chain = new Uint8Array(await crypto.subtle.digest("SHA-256", withChain));
        await this.bucket.put(segmentKey(site, live.id, seq), segment, { customMetadata: { chain: hex(chain) } });
        live.chain = chain;
        this.sql.exec("INSERT OR REPLACE INTO recording_segments (recording, seq, bytes, chain) VALUES (?, ?, ?, ?)", live.id, seq, segment.length, hex(chain));
        this.sql.exec(
          "UPDATE recordings SET bytes = bytes + ?, segments = segments + 1, chain = ?, last_at = ?, next_seq = MAX(next_seq, ?) WHERE id = ?",
          segment.length, hex(chain), Date.now(), seq + 1, live.id,
        );
      } finally {
        live.inFlight -= segment.length;
      }
    });
  }

  /** Runs storage work after the recording's earlier work; a failure marks the recording incomplete, never the console. */
  private enqueue(live: Live, work: () => Promise<void>): void {
    live.tail = live.tail.then(work).catch((err: unknown) => {
      console.log(JSON.stringify({ event: "recording.storage_error", id: live.id, error: String(err) }));
      try {
        this.sql.exec("UPDATE recordings SET incomplete = 1, next_seq = MAX(next_seq, ?), state = CASE state WHEN 'complete' THEN 'incomplete' ELSE state END WHERE id = ?", live.nextSeq, live.id);
      } catch {
        // The site was deleted meanwhile.
      }
      live.incomplete = true;
      live.gap ??= "storage";
    });
    const tail = live.tail;
    this.pending.add(tail);
    void tail.finally(() => this.pending.delete(tail));
    this.ctx.waitUntil(tail);
  }

  // ---- retention ------------------------------------------------------------------------------

  /** True once after a recording ended: the caller reschedules the alarm (its expiry may be the earliest). */
  takeExpiryMoved(): boolean {
    const moved = this.expiryMoved;
    this.expiryMoved = false;
    return moved;
  }

  /**
   * When the alarm must delete the next recordings: the earliest expiry, moved to the end of its
   * batch so that recordings expiring within EXPIRY_BATCH_MS of each other cost one alarm.
   */
  nextExpiry(): number | null {
    const row = this.sql.exec<{ at: number | null }>("SELECT MIN(ended_at) AS at FROM recordings WHERE state != 'recording'").toArray()[0];
    return row?.at == null ? null : row.at + this.retentionMs + EXPIRY_BATCH_MS;
  }

  /** Deletes finished recordings older than the retention (the alarm calls this); returns them for the audit trail. */
  async expire(now: number): Promise<Recording[]> {
    const old = this.sql
      .exec<Row>("SELECT * FROM recordings WHERE state != 'recording' AND ended_at <= ? ORDER BY ended_at LIMIT 100", now - this.retentionMs)
      .toArray()
      .map((r) => this.toApi(r));
    for (const rec of old) await this.delete(rec.id);
    return old;
  }

  // ---- the index --------------------------------------------------------------------------------

  list(q: RecordingQuery & { limit?: number }): Recording[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.vm) where.push("vm = ?"), args.push(q.vm);
    if (q.user) where.push("user = ?"), args.push(q.user);
    if (q.since) where.push("started_at >= ?"), args.push(Date.parse(q.since));
    if (q.until) where.push("started_at < ?"), args.push(Date.parse(q.until));
    const sql = `SELECT * FROM recordings ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY started_at DESC LIMIT ?`;
    return this.sql.exec<Row>(sql, ...args, q.limit ?? 500).toArray().map((r) => this.toApi(r));
  }

  get(id: string): Recording | null {
    const row = this.sql.exec<Row>("SELECT * FROM recordings WHERE id = ?", id).toArray()[0];
    return row ? this.toApi(row) : null;
  }

  /** The R2 keys of a recording's file, in order (header first), with each segment's chain value. */
  files(id: string): { keys: string[]; segments: { seq: number; bytes: number; chain: string }[] } | null {
    if (!this.get(id)) return null;
    const segments = this.sql.exec<{ seq: number; bytes: number; chain: string }>(
      "SELECT seq, bytes, chain FROM recording_segments WHERE recording = ? ORDER BY seq", id,
    ).toArray();
    return { keys: [headerKey(this.site, id), ...segments.map((s) => segmentKey(this.site, id, s.seq))], segments };
  }

  /** Deletes a finished recording, objects and rows; false if there is none, "open" while it is still recording. */
  async delete(id: string): Promise<boolean | "open"> {
    const rec = this.get(id);
    if (!rec) return false;
    if (rec.state === "recording") return "open";
    // Its last segment may still be on its way to R2: deleting before it lands would leave that
    // object (and its row) behind, where neither the index nor retention would find it again.
    await this.finishing.get(id);
    const { keys } = this.files(id)!;
    for (let i = 0; i < keys.length; i += 1000) await this.bucket.delete(keys.slice(i, i + 1000));
    this.sql.exec("DELETE FROM recording_segments WHERE recording = ?", id);
    this.sql.exec("DELETE FROM recordings WHERE id = ?", id);
    return true;
  }

  private toApi(r: Row): Recording {
    return {
      id: r.id,
      site: this.site,
      hypervisor: r.hypervisor,
      vm: r.vm,
      ...(r.user !== null ? { user: r.user } : {}),
      ...(r.link_id !== null ? { linkId: r.link_id } : {}),
      startedAt: new Date(r.started_at).toISOString(),
      ...(r.ended_at !== null ? { endedAt: new Date(r.ended_at).toISOString() } : {}),
      state: r.state,
      bytes: r.bytes,
      segments: r.segments,
      recordInput: r.record_input === 1,
      chain: r.chain,
    };
  }
}
