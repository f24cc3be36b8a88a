/**
 * Console tickets: the single-use, 60-second credential in a console's wsUrl. Only a SHA-256 of
 * each ticket is stored, in the site object's SQLite, bound to one hypervisor and VM.
 */
import { randomToken, sha256Hex } from "../auth/secrets.ts";

export const TICKET_TTL_MS = 60_000;
/** Used tickets are remembered this long so a replay gets "already used", not "unknown". */
const USED_MEMORY_MS = 10 * 60_000;

export interface TicketGrant {
  hypervisor: string;
  vm: string;
  user: string;
  /** The viewer role's consoles are view-only. */
  viewOnly: boolean;
}

export type TicketCheck =
  | { ok: true; grant: TicketGrant }
  | { ok: false; why: "unknown" | "used" | "expired" };

export class TicketBook {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    // Table `tickets`: worker/storage/migrations.ts.
  }

  async issue(grant: TicketGrant): Promise<{ ticket: string; expiresAt: number }> {
    const ticket = randomToken();
    const expiresAt = Date.now() + TICKET_TTL_MS;
    this.sql.exec(
      "INSERT INTO tickets (hash, hypervisor, vm, user, view_only, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
      await sha256Hex(ticket),
      grant.hypervisor,
      grant.vm,
      grant.user,
      grant.viewOnly ? 1 : 0,
      expiresAt,
    );
    return { ticket, expiresAt };
  }

  /** Checks and spends a ticket in one step (the object runs one event at a time). */
  async redeem(ticket: string): Promise<TicketCheck> {
    const hash = await sha256Hex(ticket);
    const row = this.sql
      .exec<{ hypervisor: string; vm: string; user: string; view_only: number; expires_at: number; used_at: number | null }>(
        "SELECT hypervisor, vm, user, view_only, expires_at, used_at FROM tickets WHERE hash = ?",
        hash,
      )
      .toArray()[0];
    if (!row) return { ok: false, why: "unknown" };
    if (row.used_at !== null) return { ok: false, why: "used" };
    if (row.expires_at < Date.now()) return { ok: false, why: "expired" };
    this.sql.exec("UPDATE tickets SET used_at = ? WHERE hash = ?", Date.now(), hash);
    return { ok: true, grant: { hypervisor: row.hypervisor, vm: row.vm, user: row.user, viewOnly: row.view_only === 1 } };
  }

  /** Forgets tickets past any use; returns how many are still live. */
  sweep(): number {
    const now = Date.now();
    this.sql.exec("DELETE FROM tickets WHERE expires_at < ?", now - USED_MEMORY_MS);
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM tickets").one().n;
  }
}
