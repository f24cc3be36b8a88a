/**
 * "Ask before each viewer joins": a share link's viewer gives a name and waits; everyone in control
 * of that VM's console (a signed-in person's console that is not view-only) is told, and one of
 * them allows or denies; no answer within JOIN_WAIT_MS means no. Until allowed, the viewer holds no
 * socket at all, so not a byte of the screen can reach it: it asks with `POST /l/:site/join` and
 * learns the answer from `GET /l/:site/join/:id`, which, once allowed, gives it a single-use pass
 * for the link's socket (a 60-s ticket, `via: "join"`, naming the viewer).
 *
 * `JoinBook` owns the requests (SQLite table `link_joins`, migration 7), so a wait survives the
 * object's hibernation and the edge's redeploys; `LinkJoins` runs the flow around it: the audit,
 * the notices to the people in control, the alarm's deadline.
 */
import { JOIN_WAIT_MS, VIEWER_NOTICE_JOIN_ANSWERED, VIEWER_NOTICE_JOIN_REQUEST } from "../../shared/protocol/limits.ts";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { randomToken, secretsEqual, sha256Hex } from "../auth/secrets.ts";
import type { ViewerAttachment } from "../relay/viewer-stream.ts";
import { type ShareLinkBook, type ShareLinkRecord, usableLink } from "./share-links.ts";
import type { JoinAnswered, LinkJoinAsked, LinkJoinLook } from "./site-api.ts";
import type { SiteAudit } from "./site-audit.ts";
import type { StreamBook } from "./stream-book.ts";
import type { TicketBook } from "./tickets.ts";

/** Viewers one link may keep waiting at once: more is someone knocking, not a person. */
export const JOIN_WAITING_MAX = 5;
/** Settled requests are kept this long so a late look at one says what happened to it. */
const KEEP_SETTLED_MS = 24 * 3600_000;
/**
 * An allowed viewer whose console dropped (the network, the connector, the VM's console server:
 * what the console page retries) may come back this long after without being asked about again;
 * the same page holds the request's token. A console someone ended, or the edge ended for a
 * reason (idle, access, the link), keeps no seat.
 */
export const REJOIN_MS = 60_000;
const KEEPS_SEAT = new Set([1000, 1001, 1005, 1006, CloseCode.ended, CloseCode.internal, CloseCode.upstreamFailed, CloseCode.connectorOffline, CloseCode.upstreamTimeout]);

/**
 * waiting → allowed → used (the pass was handed out), or → denied | timed_out | ended (the link
 * ended first).
 */
export type JoinState = "waiting" | "allowed" | "used" | "denied" | "timed_out" | "ended";

export interface JoinRecord {
  id: string;
  linkId: string;
  name: string;
  askedAt: number;
  expiresAt: number;
  state: JoinState;
  answeredBy: string | null;
  answeredAt: number | null;
  /** When its viewer's console dropped in a way that keeps the seat (null: seated, or never). */
  leftAt: number | null;
}

type Row = {
  id: string;
  link_id: string;
  name: string;
  token_hash: string;
  asked_at: number;
  expires_at: number;
  state: JoinState;
  answered_by: string | null;
  answered_at: number | null;
  left_at: number | null;
};

function record(r: Row): JoinRecord {
  return { id: r.id, linkId: r.link_id, name: r.name, askedAt: r.asked_at, expiresAt: r.expires_at, state: r.state, answeredBy: r.answered_by, answeredAt: r.answered_at, leftAt: r.left_at };
}

/** The join requests: the one owner of their rows. */
export class JoinBook {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  /** A new waiting request; the token is the viewer's alone (only its hash is kept). */
  async ask(linkId: string, name: string, now = Date.now()): Promise<{ record: JoinRecord; token: string }> {
    // Every request a day old goes, but one whose viewer is on the console now (its seat).
    this.sql.exec("DELETE FROM link_joins WHERE asked_at < ? AND NOT (state = 'used' AND left_at IS NULL)", now - KEEP_SETTLED_MS);
    const id = randomToken(9);
    const token = randomToken(32);
    const expiresAt = now + JOIN_WAIT_MS;
    this.sql.exec(
      "INSERT INTO link_joins (id, link_id, name, token_hash, asked_at, expires_at, state) VALUES (?, ?, ?, ?, ?, ?, 'waiting')",
      id,
      linkId,
      name,
      await sha256Hex(token),
      now,
      expiresAt,
    );
    return { record: { id, linkId, name, askedAt: now, expiresAt, state: "waiting", answeredBy: null, answeredAt: null, leftAt: null }, token };
  }

  get(id: string): JoinRecord | null {
    const row = this.sql.exec<Row>("SELECT * FROM link_joins WHERE id = ?", id).toArray()[0];
    return row ? record(row) : null;
  }

  /** The request, if `token` is its viewer's. */
  async withToken(id: string, token: string): Promise<JoinRecord | null> {
    const row = this.sql.exec<Row>("SELECT * FROM link_joins WHERE id = ?", id).toArray()[0];
    return row && (await secretsEqual(await sha256Hex(token), row.token_hash)) ? record(row) : null;
  }

  /** Waiting requests (of one link, or of every link), oldest first. */
  waiting(linkId?: string): JoinRecord[] {
    const rows = linkId
      ? this.sql.exec<Row>("SELECT * FROM link_joins WHERE state = 'waiting' AND link_id = ? ORDER BY asked_at", linkId)
      : this.sql.exec<Row>("SELECT * FROM link_joins WHERE state = 'waiting' ORDER BY asked_at");
    return rows.toArray().map(record);
  }

  /** Moves a request on from `from`; false when it was not in that state (already settled). */
  settle(id: string, from: JoinState, to: JoinState, by: string | null = null, now = Date.now()): boolean {
    const before = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM link_joins WHERE id = ? AND state = ?", id, from).one().n;
    if (before === 0) return false;
    this.sql.exec("UPDATE link_joins SET state = ?, answered_by = coalesce(?, answered_by), answered_at = coalesce(answered_at, ?) WHERE id = ?", to, by, now, id);
    return true;
  }

  /** Its viewer's console opened (null: no rejoin while it lives), or dropped (`at`). */
  seated(id: string, leftAt: number | null = null): void {
    this.sql.exec("UPDATE link_joins SET left_at = ? WHERE id = ?", leftAt, id);
  }

  /** Waiting requests past their deadline. */
  overdue(now = Date.now()): JoinRecord[] {
    return this.sql.exec<Row>("SELECT * FROM link_joins WHERE state = 'waiting' AND expires_at <= ?", now).toArray().map(record);
  }

  /** Requests of a link that has ended that could still lead to a console. */
  open(linkId: string): JoinRecord[] {
    return this.sql.exec<Row>("SELECT * FROM link_joins WHERE link_id = ? AND state IN ('waiting', 'allowed')", linkId).toArray().map(record);
  }

  /** When the next waiting request runs out (for the object's alarm). */
  nextExpiry(): number | null {
    return this.sql.exec<{ t: number | null }>("SELECT min(expires_at) AS t FROM link_joins WHERE state = 'waiting'").one().t ?? null;
  }
}

export type JoinOutcome = "allowed" | "denied" | "timed_out" | "ended";

/** What the waiting viewer is told, by state. */
export const JOIN_WORDS: Record<JoinState, string> = {
  waiting: "Waiting for someone in control of this console to let you in.",
  allowed: "You were let in.",
  used: "This request to join was already used: open the link again to ask again.",
  denied: "Someone in control of this console said no: you may not watch it.",
  timed_out: `Nobody answered within ${JOIN_WAIT_MS / 60_000} minutes: ask whoever shared the link, then open it again.`,
  ended: "This share link ended while you waited.",
};

/** What LinkJoins reads and changes in the site object. */
export interface JoinParties {
  book: JoinBook;
  links: ShareLinkBook;
  tickets: TicketBook;
  streams: StreamBook;
  audit: SiteAudit;
  /** The VM's name for people (the link holds its id). */
  vmName(hypervisor: string, vm: string): string;
}

/** Whether a console's viewer is one of those asked: a signed-in person in control of it. */
export function inControl(a: Pick<ViewerAttachment, "viewOnly" | "linkId">): boolean {
  return !a.viewOnly && a.linkId === undefined;
}

export class LinkJoins {
  private readonly to: JoinParties;

  constructor(to: JoinParties) {
    this.to = to;
  }

  get book(): JoinBook {
    return this.to.book;
  }

  /**
   * `POST /l/:site/join`: a viewer of the link behind `secret` asks to join as `name` (with the PIN's
   * pass first, if the link has a PIN); the people in control of its VM's console hear it.
   */
  async ask(secret: string, name: string, pass: string | undefined): Promise<LinkJoinAsked> {
    const usable = await usableLink(this.to.links, secret);
    if (!usable.ok) return usable;
    const { link } = usable;
    if (!link.approval) return { ok: false, status: 400, code: "no_approval", message: "This share link does not ask before viewers join: open it as it is." };
    // Those past their deadline are no longer waiting, whether or not the alarm has run yet.
    this.expire();
    // Before the PIN's pass is spent: a full list turns the viewer away with the pass still good.
    if (this.to.book.waiting(link.id).length >= JOIN_WAITING_MAX) {
      return { ok: false, status: 429, code: "too_many_waiting", message: `${JOIN_WAITING_MAX} viewers are already waiting on this share link: try again in a couple of minutes.` };
    }
    if (link.pin) {
      const check = pass ? await this.to.tickets.redeem(pass) : null;
      if (!check?.ok || check.grant.via !== "pin" || check.grant.user !== `link:${link.id}`) {
        return { ok: false, status: 403, code: "pin_needed", message: "This share link needs its PIN first." };
      }
    }
    const { record, token } = await this.to.book.ask(link.id, name);
    this.to.audit.send({ type: "link.join_asked", actor: `link:${link.id}`, detail: { id: link.id, join: record.id, name, hypervisor: link.hypervisor, vm: link.vm } });
    for (const s of this.controllers(link)) s.notify(this.requestNotice(link, record));
    return { ok: true, id: record.id, token, expiresAt: record.expiresAt, vm: this.to.vmName(link.hypervisor, link.vm) };
  }

  /**
   * `GET /l/:site/join/:id`: the viewer looks. While waiting, the state; once allowed, a single-use
   * pass for the link's socket (handed out once: the request is then used). An ended link answers
   * as its status would.
   */
  async look(secret: string, id: string, token: string): Promise<LinkJoinLook> {
    const usable = await usableLink(this.to.links, secret);
    if (!usable.ok) return usable;
    const { link } = usable;
    const join = await this.to.book.withToken(id, token);
    if (!join || join.linkId !== link.id) return { ok: false, status: 404, code: "unknown_join", message: "There is no such request to join: open the link again." };
    // The alarm may be a moment late: the deadline holds regardless.
    if (join.state === "waiting" && join.expiresAt <= Date.now()) this.timedOut(join);
    // A yes is collected within JOIN_WAIT_MS too (the page looks every second): not days later.
    if (join.state === "allowed" && join.answeredAt !== null && Date.now() - join.answeredAt > JOIN_WAIT_MS) this.to.book.settle(join.id, "allowed", "timed_out");
    const now = this.to.book.get(join.id)!;
    const expiresAt = now.expiresAt;
    // Back within REJOIN_MS of a dropped console: let in again without asking (once per drop).
    const rejoin = now.state === "used" && now.leftAt !== null && Date.now() - now.leftAt < REJOIN_MS;
    if (now.state !== "allowed" && !rejoin) return { ok: true, state: now.state, expiresAt, message: JOIN_WORDS[now.state] };
    if (rejoin) this.to.book.seated(join.id);
    else if (!this.to.book.settle(join.id, "allowed", "used")) return { ok: true, state: "used", expiresAt, message: JOIN_WORDS.used };
    const { ticket, expiresAt: passExpiresAt } = await this.to.tickets.issue({
      hypervisor: link.hypervisor,
      vm: link.vm,
      user: `link:${link.id}`,
      viewOnly: link.viewOnly,
      via: "join",
      viewerName: join.name,
      joinId: join.id,
    });
    return { ok: true, state: "allowed", expiresAt, message: JOIN_WORDS.allowed, pass: ticket, passExpiresAt };
  }

  /** Someone in control (site-rpc.ts checked) said yes or no; a request no longer waiting is a 409. */
  answer(link: ShareLinkRecord, join: JoinRecord, allow: boolean, by: string): JoinAnswered {
    if (join.state === "waiting" && join.expiresAt <= Date.now()) this.timedOut(join);
    if (!this.to.book.settle(join.id, "waiting", allow ? "allowed" : "denied", by)) {
      const now = this.to.book.get(join.id)!;
      const what = now.state === "timed_out" ? "timed out" : now.state === "ended" ? "ended with its link" : `already answered${now.answeredBy ? ` by ${now.answeredBy}` : ""}`;
      return { ok: false, status: 409, code: "join_settled", message: `${join.name}'s request to join has ${what}.` };
    }
    this.to.audit.send({
      type: allow ? "link.join_allowed" : "link.join_denied",
      actor: by,
      detail: { id: link.id, join: join.id, name: join.name, hypervisor: link.hypervisor, vm: link.vm },
    });
    this.answered(link, join.id, allow ? "allowed" : "denied", by);
    return { ok: true, id: join.id, name: join.name, state: allow ? "allowed" : "denied" };
  }

  /** The alarm: requests nobody answered in time count as no. */
  expire(now = Date.now()): number {
    const overdue = this.to.book.overdue(now);
    for (const join of overdue) this.timedOut(join);
    return overdue.length;
  }

  /** A link ended (revoked, expired, its creator's access gone): its requests go with it. */
  linkEnded(linkId: string): void {
    const link = this.to.links.byId(linkId);
    for (const join of this.to.book.open(linkId)) {
      if (!this.to.book.settle(join.id, join.state, "ended")) continue;
      if (link && join.state === "waiting") this.answered(link, join.id, "ended");
    }
  }

  /** A console opened: someone in control of it hears who is waiting on its VM right now. */
  tellNewcomer(a: Pick<ViewerAttachment, "hypervisor" | "vm" | "viewOnly" | "linkId">, notify: (notice: Record<string, unknown>) => boolean): void {
    if (!inControl(a)) return;
    for (const join of this.to.book.waiting()) {
      const link = this.to.links.byId(join.linkId);
      if (link && link.hypervisor === a.hypervisor && link.vm === a.vm) notify(this.requestNotice(link, join));
    }
  }

  /** An allowed viewer's console ended: a drop keeps its seat for REJOIN_MS, anything else ends it. */
  consoleEnded(id: string, code: number): void {
    if (KEEPS_SEAT.has(code)) this.to.book.seated(id, Date.now());
  }

  /** Waiting requests of a link, for the Share links list. */
  waitingOn(linkId: string): { id: string; name: string; askedAt: string; expiresAt: string }[] {
    return this.to.book.waiting(linkId).map((j) => ({ id: j.id, name: j.name, askedAt: new Date(j.askedAt).toISOString(), expiresAt: new Date(j.expiresAt).toISOString() }));
  }

  private timedOut(join: JoinRecord): void {
    if (!this.to.book.settle(join.id, "waiting", "timed_out")) return;
    const link = this.to.links.byId(join.linkId);
    this.to.audit.send({ type: "link.join_timed_out", actor: "system", detail: { id: join.linkId, join: join.id, name: join.name, ...(link ? { hypervisor: link.hypervisor, vm: link.vm } : {}) } });
    if (link) this.answered(link, join.id, "timed_out");
  }

  private controllers(link: ShareLinkRecord) {
    return this.to.streams.where((a) => a.hypervisor === link.hypervisor && a.vm === link.vm && inControl(a));
  }

  private requestNotice(link: ShareLinkRecord, join: JoinRecord): Record<string, unknown> {
    return {
      type: VIEWER_NOTICE_JOIN_REQUEST,
      id: join.id,
      link: link.id,
      name: join.name,
      vm: this.to.vmName(link.hypervisor, link.vm),
      viewOnly: link.viewOnly,
      expiresAt: new Date(join.expiresAt).toISOString(),
    };
  }

  /** Everyone who was asked hears it is settled (their prompt goes away). */
  private answered(link: ShareLinkRecord, id: string, outcome: JoinOutcome, by?: string): void {
    for (const s of this.controllers(link)) s.notify({ type: VIEWER_NOTICE_JOIN_ANSWERED, id, outcome, ...(by ? { by } : {}) });
  }
}
