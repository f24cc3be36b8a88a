/**
 * Share links: a console anyone holding the URL may open until the link expires or is revoked.
 * The URL carries a 256-bit secret; only its SHA-256 is stored. The public `id` names the link in
 * lists and revocations and grants nothing.
 */
import { randomToken, sha256Hex } from "../auth/secrets.ts";

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
}

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
};

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

  async create(link: Omit<ShareLinkRecord, "id" | "createdAt" | "revokedAt">): Promise<{ id: string; secret: string }> {
    // A user whose access was just taken away (see TicketBook.block) shares nothing more.
    if (link.createdById && this.sql.exec("SELECT 1 FROM blocked_users WHERE user_id = ?", link.createdById).toArray().length > 0) {
      throw new Error("this user's access was taken away");
    }
    const id = randomToken(16);
    const secret = randomToken(32);
    this.sql.exec(
      "INSERT INTO links (id, secret_hash, hypervisor, vm, view_only, created_by, created_at, expires_at, created_by_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      id,
      await sha256Hex(secret),
      link.hypervisor,
      link.vm,
      link.viewOnly ? 1 : 0,
      link.createdBy,
      Date.now(),
      link.expiresAt,
      link.createdById ?? null,
    );
    return { id, secret };
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

export function linkState(link: ShareLinkRecord, now = Date.now()): "active" | "expired" | "revoked" {
  if (link.revokedAt !== null) return "revoked";
  return link.expiresAt <= now ? "expired" : "active";
}
