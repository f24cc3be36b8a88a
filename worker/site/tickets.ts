/**
 * Console tickets: the single-use, 60-second credential in a console's wsUrl. Only a SHA-256 of
 * each ticket is stored, in the site object's SQLite, bound to one hypervisor and VM.
 */
import { randomToken, sha256Hex } from "../auth/secrets.ts";

export const TICKET_TTL_MS = 60_000;
/** Used tickets are remembered this long so a replay gets "already used", not "unknown". */
const USED_MEMORY_MS = 10 * 60_000;

export interface ConsoleGrant {
  hypervisor: string;
  vm: string;
  user: string;
  /** The user's stable id (names are reusable); absent only on tickets from before ids. */
  userId?: string;
  /** The viewer role's consoles are view-only. */
  viewOnly: boolean;
  /**
   * A share link's pass rather than a console ticket: "pin" for the right PIN (link-pass.ts),
   * "join" for a viewer someone allowed in (link-joins.ts). A link's socket takes only its kind.
   */
  via?: "pin" | "join";
  /** The name an allowed viewer gave (Watching now shows it), and the request that let them in. */
  viewerName?: string;
  joinId?: string;
}

export type TicketCheck =
  | { ok: true; grant: ConsoleGrant }
  | { ok: false; why: "unknown" | "used" | "expired" };

export class TicketBook {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    // Tables `tickets` (migration 1; user_id: 3) and `blocked_users` (3): worker/storage/migrations.ts.
  }

  /**
   * Users whose access was taken away: "all" (deleted or disabled) or "control" (now a viewer).
   * A request authenticated just before the change cannot be given a ticket just after it.
   */
  block(userId: string, scope: "all" | "control"): void {
    this.sql.exec("INSERT OR REPLACE INTO blocked_users (user_id, scope) VALUES (?, ?)", userId, scope);
  }

  unblock(userId: string): void {
    this.sql.exec("DELETE FROM blocked_users WHERE user_id = ?", userId);
  }

  /**
   * Whether `userId` may be given a console at all. Only "all" refuses: a "control" row (0.3.0
   * wrote one when someone was lowered to viewer, and the registry may still replay one) says
   * nothing any more, since what a person may do on a VM is decide()'s answer with the newest
   * access this site was told (reach-book.ts); honouring it would refuse a viewer's grants.
   */
  allowed(userId: string | undefined): boolean {
    if (!userId) return true;
    const scope = this.sql.exec<{ scope: string }>("SELECT scope FROM blocked_users WHERE user_id = ?", userId).toArray()[0]?.scope;
    return scope !== "all";
  }

  /** Drops a user's unredeemed tickets (all, or only full-control ones); returns how many. */
  dropForUser(userId: string, onlyControl: boolean): number {
    const cond = `user_id = ? AND used_at IS NULL${onlyControl ? " AND view_only = 0" : ""}`;
    const n = this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM tickets WHERE ${cond}`, userId).one().n;
    this.sql.exec(`DELETE FROM tickets WHERE ${cond}`, userId);
    return n;
  }

  /** A user's unredeemed tickets (a review drops those the user may no longer redeem). */
  unredeemedOf(userId: string): { hash: string; hypervisor: string; vm: string; viewOnly: boolean }[] {
    return this.sql
      .exec<{ hash: string; hypervisor: string; vm: string; view_only: number }>("SELECT hash, hypervisor, vm, view_only FROM tickets WHERE user_id = ? AND used_at IS NULL", userId)
      .toArray()
      .map((t) => ({ hash: t.hash, hypervisor: t.hypervisor, vm: t.vm, viewOnly: t.view_only === 1 }));
  }

  drop(hash: string): void {
    this.sql.exec("DELETE FROM tickets WHERE hash = ?", hash);
  }

  async issue(grant: ConsoleGrant): Promise<{ ticket: string; expiresAt: number }> {
    if (!this.allowed(grant.userId)) throw new Error("this user's access was taken away");
    const ticket = randomToken();
    const expiresAt = Date.now() + TICKET_TTL_MS;
    this.sql.exec(
      "INSERT INTO tickets (hash, hypervisor, vm, user, view_only, expires_at, user_id, via, viewer_name, join_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      await sha256Hex(ticket),
      grant.hypervisor,
      grant.vm,
      grant.user,
      grant.viewOnly ? 1 : 0,
      expiresAt,
      grant.userId ?? null,
      grant.via ?? null,
      grant.viewerName ?? null,
      grant.joinId ?? null,
    );
    return { ticket, expiresAt };
  }

  /** Checks and spends a ticket in one step (the object runs one event at a time). */
  async redeem(ticket: string): Promise<TicketCheck> {
    const hash = await sha256Hex(ticket);
    const row = this.sql
      .exec<{
        hypervisor: string;
        vm: string;
        user: string;
        user_id: string | null;
        view_only: number;
        expires_at: number;
        used_at: number | null;
        via: "pin" | "join" | null;
        viewer_name: string | null;
        join_id: string | null;
      }>("SELECT hypervisor, vm, user, user_id, view_only, expires_at, used_at, via, viewer_name, join_id FROM tickets WHERE hash = ?",
        hash,
      )
      .toArray()[0];
    if (!row) return { ok: false, why: "unknown" };
    if (row.used_at !== null) return { ok: false, why: "used" };
    if (row.expires_at < Date.now()) return { ok: false, why: "expired" };
    this.sql.exec("UPDATE tickets SET used_at = ? WHERE hash = ?", Date.now(), hash);
    return {
      ok: true,
      grant: {
        hypervisor: row.hypervisor,
        vm: row.vm,
        user: row.user,
        viewOnly: row.view_only === 1,
        ...(row.user_id ? { userId: row.user_id } : {}),
        ...(row.via ? { via: row.via } : {}),
        ...(row.viewer_name ? { viewerName: row.viewer_name } : {}),
        ...(row.join_id ? { joinId: row.join_id } : {}),
      },
    };
  }

  /** Forgets tickets past any use; returns how many are still live. */
  sweep(): number {
    const now = Date.now();
    this.sql.exec("DELETE FROM tickets WHERE expires_at < ?", now - USED_MEMORY_MS);
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM tickets").one().n;
  }
}
