/**
 * Sign-in throttling, atomic and not a lockout weapon.
 *
 * The registry runs one event at a time, so `attempt` checks the limits and records the attempt
 * as a failure in the same step, before any password is verified; a success then takes its record
 * back. A burst of parallel wrong guesses therefore gets at most the limit evaluated.
 *
 * Limits, in a sliding 15-minute window:
 * - 5 failures per (account, client address) pair: a guesser locks out only their own address,
 *   never the account's owner elsewhere;
 * - 20 failures per client address, whatever the accounts (spraying one password over many names).
 * A refused attempt is not recorded, so waiting it out always works.
 */
import type { SignInBlock } from "../../shared/api/types.ts";

export const WINDOW_MS = 15 * 60_000;
export const PAIR_LIMIT = 5;
export const ADDRESS_LIMIT = 20;

/** A block, as `GET /api/signin-blocks` lists it. */
export type ThrottleBlock = SignInBlock;

export class ThrottleStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    // Table `signin_attempts` (migration 2): worker/storage/migrations.ts.
  }

  private forget(now: number): void {
    this.sql.exec("DELETE FROM signin_attempts WHERE at < ?", now - WINDOW_MS);
  }

  /** Seconds until the count of rows matched drops below `limit`, or 0. */
  private wait(where: string, args: string[], limit: number, now: number): number {
    const rows = this.sql
      .exec<{ at: number }>(`SELECT at FROM signin_attempts WHERE ${where} ORDER BY at DESC LIMIT ?`, ...args, limit)
      .toArray();
    return rows.length >= limit ? Math.max(1, Math.ceil((rows[limit - 1]!.at + WINDOW_MS - now) / 1000)) : 0;
  }

  /**
   * Checks the limits and, if the attempt may go ahead, records it as a failure at once. Returns
   * the attempt's id (to take back on success) or the seconds to wait.
   */
  attempt(account: string, address: string): { ok: true; attempt: string } | { ok: false; retryAfter: number } {
    const now = Date.now();
    this.forget(now);
    const wait = Math.max(
      this.wait("address = ? AND account = ?", [address, account], PAIR_LIMIT, now),
      this.wait("address = ? AND account IS NULL", [address], ADDRESS_LIMIT, now),
    );
    if (wait > 0) return { ok: false, retryAfter: wait };
    const attempt = crypto.randomUUID();
    this.sql.exec("INSERT INTO signin_attempts VALUES (?, ?, ?, ?), (?, NULL, ?, ?)", attempt, account, address, now, attempt, address, now);
    return { ok: true, attempt };
  }

  /** The password was right: this attempt and the pair's earlier failures are forgotten. */
  succeeded(attempt: string, account: string, address: string): void {
    this.sql.exec("DELETE FROM signin_attempts WHERE attempt = ? OR (address = ? AND account = ?)", attempt, address, account);
  }

  /** What is blocked right now (for the admin API). */
  blocks(): ThrottleBlock[] {
    const now = Date.now();
    this.forget(now);
    const groups = this.sql
      .exec<{ account: string | null; address: string; n: number }>(
        "SELECT account, address, count(*) AS n FROM signin_attempts GROUP BY address, account",
      )
      .toArray();
    const out: ThrottleBlock[] = [];
    for (const g of groups) {
      const limit = g.account === null ? ADDRESS_LIMIT : PAIR_LIMIT;
      if (g.n < limit) continue;
      const retryAfter = g.account === null
        ? this.wait("address = ? AND account IS NULL", [g.address], limit, now)
        : this.wait("address = ? AND account = ?", [g.address, g.account], limit, now);
      out.push({ account: g.account, address: g.address, failures: g.n, retryAfter });
    }
    return out;
  }

  /** Forgets failures: of an account (every address), of an address (every account), or of both. */
  clear(account: string | null, address: string | null): number {
    const where: string[] = [];
    const args: string[] = [];
    if (account !== null) where.push("account = ?"), args.push(account);
    if (address !== null) where.push("address = ?"), args.push(address);
    if (where.length === 0) return 0;
    // Clearing an account also clears the per-address rows its failures added.
    const attempts = new Set(
      this.sql
        .exec<{ attempt: string }>(`SELECT attempt FROM signin_attempts WHERE ${where.join(" AND ")}`, ...args)
        .toArray()
        .map((r) => r.attempt),
    );
    for (const a of attempts) this.sql.exec("DELETE FROM signin_attempts WHERE attempt = ?", a);
    return attempts.size;
  }
}
