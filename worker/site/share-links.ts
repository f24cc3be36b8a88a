/**
 * Share links: a console anyone holding the URL (and the link's PIN, if it has one; and someone's
 * yes, if it asks before each viewer joins) may open until the link expires, is revoked or locks
 * after too many wrong PINs.
 * The URL carries a 256-bit secret; only its SHA-256 is stored. The public `id` names the link in
 * lists and revocations and grants nothing.
 */
import { randomToken, secretsEqual, sha256Hex } from "../auth/secrets.ts";

export interface ShareLinkRecord {
  id: string;
  hypervisor: string;
  vm: string;
  viewOnly: boolean;
  createdBy: string;
  /** The creator's stable id: ownership follows it, not the reusable name. */
  createdById?: string | null;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  /** Whether the link asks for a PIN before any console. */
  pin: boolean;
  /** Wrong PINs so far, and when the link locked (after MAX_PIN_FAILURES of them). */
  pinFailures: number;
  lockedAt: number | null;
  /** No console before this time (null: at once). */
  startsAt: number | null;
  /** Consoles the link may ever open (null: no limit), and how many it has opened. */
  maxUses: number | null;
  uses: number;
  /** Viewers at once (null: MAX_CONSOLES_PER_LINK). */
  maxViewers: number | null;
  /** The creator's words, shown in the Share links list (≤ NOTE_MAX characters). */
  note: string | null;
  /** Each viewer waits until someone in control of the VM's console allows them (link-joins.ts). */
  approval: boolean;
}

export const NOTE_MAX = 200;

/** What a creator chooses beyond the VM, mode and expiry. */
export interface LinkOptions {
  pin?: boolean;
  startsAt?: number | null;
  maxUses?: number | null;
  maxViewers?: number | null;
  note?: string | null;
  approval?: boolean;
}

/**
 * Wrong PINs a link takes over its whole life before it locks for good. Six digits are a million
 * codes, and anyone who saw one SHA-256 could try them all offline in a second: the stored hash
 * is not the defence, this count is (10 tries in a million). The right code after fewer than this
 * many wrong ones still opens.
 */
export const MAX_PIN_FAILURES = 10;
export const PIN_PATTERN = /^[0-9]{6}$/;

export type PinCheck = { ok: true } | { ok: false; why: "wrong"; left: number } | { ok: false; why: "locked" };

type Row = {
  id: string;
  secret_hash: string;
  hypervisor: string;
  vm: string;
  view_only: number;
  created_by: string;
  created_by_id: string | null;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  expiry_noted: number;
  pin_hash: string | null;
  pin_failures: number;
  locked_at: number | null;
  starts_at: number | null;
  max_uses: number | null;
  uses: number;
  max_viewers: number | null;
  note: string | null;
  approval: number;
};

/** The link's id salts the hash, so one table of the million codes' hashes does not fit every link. */
function pinHash(id: string, pin: string): Promise<string> {
  return sha256Hex(`${id}:${pin}`);
}

/** A six-digit code from the platform's CSPRNG (rejection sampling: no modulo bias). */
function newPin(): string {
  const buf = new Uint32Array(1);
  for (;;) {
    crypto.getRandomValues(buf);
    if (buf[0]! < 4_294_000_000) return String(buf[0]! % 1_000_000).padStart(6, "0");
  }
}

/** Ended links are kept this long so their URLs answer "expired" or "revoked", not "unknown". */
const KEEP_ENDED_MS = 30 * 24 * 3600_000;

function record(r: Row): ShareLinkRecord {
  return {
    id: r.id,
    hypervisor: r.hypervisor,
    vm: r.vm,
    viewOnly: r.view_only === 1,
    createdBy: r.created_by,
    createdById: r.created_by_id,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    pin: r.pin_hash !== null,
    pinFailures: r.pin_failures,
    lockedAt: r.locked_at,
    startsAt: r.starts_at,
    maxUses: r.max_uses,
    uses: r.uses,
    maxViewers: r.max_viewers,
    note: r.note,
    approval: r.approval === 1,
  };
}

export class ShareLinkBook {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    // Tables `links` (migration 1; created_by_id: migration 3): worker/storage/migrations.ts.
  }

  /** Revokes every active link a user created; returns them. */
  revokeByCreator(userId: string, now = Date.now()): ShareLinkRecord[] {
    const rows = this.sql
      .exec<Row>("SELECT * FROM links WHERE created_by_id = ? AND revoked_at IS NULL AND expires_at > ?", userId, now)
      .toArray()
      .map(record);
    for (const l of rows) this.revoke(l.id);
    return rows;
  }

  /** A user's links that still work (a review checks each against what the user may still do). */
  activeByCreator(userId: string, now = Date.now()): ShareLinkRecord[] {
    return this.sql.exec<Row>("SELECT * FROM links WHERE created_by_id = ? AND revoked_at IS NULL AND expires_at > ?", userId, now).toArray().map(record);
  }

  async create(
    link: Pick<ShareLinkRecord, "hypervisor" | "vm" | "viewOnly" | "createdBy" | "createdById" | "expiresAt">,
    opts: LinkOptions = {},
  ): Promise<{ id: string; secret: string; pin?: string }> {
    // A user whose access was just taken away (see TicketBook.block) shares nothing more.
    if (link.createdById && this.sql.exec("SELECT 1 FROM blocked_users WHERE user_id = ?", link.createdById).toArray().length > 0) {
      throw new Error("this user's access was taken away");
    }
    const id = randomToken(16);
    const secret = randomToken(32);
    // The code itself is returned once and never stored.
    const pin = opts.pin ? newPin() : undefined;
    this.sql.exec(
      `INSERT INTO links (id, secret_hash, hypervisor, vm, view_only, created_by, created_at, expires_at, created_by_id, pin_hash,
         starts_at, max_uses, max_viewers, note, approval) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      id,
      await sha256Hex(secret),
      link.hypervisor,
      link.vm,
      link.viewOnly ? 1 : 0,
      link.createdBy,
      Date.now(),
      link.expiresAt,
      link.createdById ?? null,
      pin ? await pinHash(id, pin) : null,
      opts.startsAt ?? null,
      opts.maxUses ?? null,
      opts.maxViewers ?? null,
      opts.note ?? null,
      opts.approval ? 1 : 0,
    );
    return { id, secret, ...(pin ? { pin } : {}) };
  }

  /**
   * Checks a PIN against a link and counts a wrong one; the MAX_PIN_FAILURES-th locks the link
   * (for good: its creator makes a new one). The object runs one event at a time, so two guesses
   * cannot both read the same count.
   */
  async checkPin(id: string, pin: string, now = Date.now()): Promise<PinCheck> {
    const row = this.sql.exec<Row>("SELECT * FROM links WHERE id = ?", id).toArray()[0];
    if (!row || row.pin_hash === null) return { ok: true };
    if (row.locked_at !== null) return { ok: false, why: "locked" };
    if (PIN_PATTERN.test(pin) && (await secretsEqual(await pinHash(id, pin), row.pin_hash))) return { ok: true };
    const failures = row.pin_failures + 1;
    const locked = failures >= MAX_PIN_FAILURES;
    this.sql.exec("UPDATE links SET pin_failures = ?, locked_at = ? WHERE id = ?", failures, locked ? now : null, id);
    return locked ? { ok: false, why: "locked" } : { ok: false, why: "wrong", left: MAX_PIN_FAILURES - failures };
  }

  async bySecret(secret: string): Promise<ShareLinkRecord | null> {
    const row = this.sql.exec<Row>("SELECT * FROM links WHERE secret_hash = ?", await sha256Hex(secret)).toArray()[0];
    return row ? record(row) : null;
  }

  byId(id: string): ShareLinkRecord | null {
    const row = this.sql.exec<Row>("SELECT * FROM links WHERE id = ?", id).toArray()[0];
    return row ? record(row) : null;
  }

  list(): ShareLinkRecord[] {
    this.sql.exec("DELETE FROM links WHERE max(expires_at, coalesce(revoked_at, 0)) < ?", Date.now() - KEEP_ENDED_MS);
    return this.sql.exec<Row>("SELECT * FROM links ORDER BY created_at DESC").toArray().map(record);
  }

  /** Counts a console the link opened (maxUses). */
  used(id: string): void {
    this.sql.exec("UPDATE links SET uses = uses + 1 WHERE id = ?", id);
  }

  revoke(id: string): void {
    this.sql.exec("UPDATE links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", Date.now(), id);
  }

  /** Links that have expired and whose expiry has not been acted on yet. */
  expiredUnnoted(now = Date.now()): ShareLinkRecord[] {
    return this.sql
      .exec<Row>("SELECT * FROM links WHERE expires_at <= ? AND expiry_noted = 0 AND revoked_at IS NULL", now)
      .toArray()
      .map(record);
  }

  noteExpiry(id: string): void {
    this.sql.exec("UPDATE links SET expiry_noted = 1 WHERE id = ?", id);
  }

  /** When the next live link expires (for the object's alarm). */
  nextExpiry(): number | null {
    return (
      this.sql
        .exec<{ t: number | null }>("SELECT min(expires_at) AS t FROM links WHERE expiry_noted = 0 AND revoked_at IS NULL")
        .one().t ?? null
    );
  }
}

/** Why a link that is active opens no console right now, or null (it may). */
export function linkClosed(link: ShareLinkRecord, now = Date.now()): { code: "link_not_started" | "link_used_up"; message: string } | null {
  if (link.startsAt !== null && now < link.startsAt) {
    return { code: "link_not_started", message: `This share link opens at ${new Date(link.startsAt).toISOString()} (UTC); come back then.` };
  }
  if (link.maxUses !== null && link.uses >= link.maxUses) {
    return { code: "link_used_up", message: link.maxUses === 1 ? "This one-time share link was already used." : `This share link was already used ${link.maxUses} times (its most).` };
  }
  return null;
}

export function linkState(link: ShareLinkRecord, now = Date.now()): "active" | "expired" | "revoked" | "locked" {
  if (link.revokedAt !== null) return "revoked";
  if (link.lockedAt !== null) return "locked";
  return link.expiresAt <= now ? "expired" : "active";
}

/** Why a link that is not active opens nothing, by its state. */
export const LINK_ENDED = {
  revoked: "This share link was revoked.",
  expired: "This share link expired.",
  locked: "This share link is locked: too many wrong PINs were tried. Ask whoever shared it for a new link.",
} as const;

export type LinkRefusalCode = "unknown_link" | "link_expired" | "link_revoked" | "link_locked" | "link_not_started" | "link_used_up";

/**
 * The link behind `secret` if it may open a console now, or why not, as the link's public routes
 * answer (404 unknown, 410 ended or used up, 403 not started yet).
 */
export async function usableLink(
  links: ShareLinkBook,
  secret: string,
  now = Date.now(),
): Promise<{ ok: true; link: ShareLinkRecord } | { ok: false; status: 403 | 404 | 410; code: LinkRefusalCode; message: string }> {
  const link = await links.bySecret(secret);
  if (!link) return { ok: false, status: 404, code: "unknown_link", message: "Unknown share link." };
  const state = linkState(link, now);
  if (state !== "active") return { ok: false, status: 410, code: `link_${state}`, message: LINK_ENDED[state] };
  const closed = linkClosed(link, now);
  if (closed) return { ok: false, status: closed.code === "link_used_up" ? 410 : 403, ...closed };
  return { ok: true, link };
}
