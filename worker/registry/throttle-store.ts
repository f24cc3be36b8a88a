/**
 * Sign-in throttling: failures counted per account and per client address in a sliding window.
 * Past the limit, further attempts are refused (429) until the oldest failure leaves the window.
 */
const WINDOW_MS = 15 * 60_000;
export const ACCOUNT_LIMIT = 5;
export const ADDRESS_LIMIT = 20;

export class ThrottleStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    // Table `signin_failures`: worker/storage/migrations.ts.
  }

  /** Seconds to wait before another attempt, or 0 when allowed. */
  retryAfter(account: string, address: string): number {
    const since = Date.now() - WINDOW_MS;
    this.sql.exec("DELETE FROM signin_failures WHERE at < ?", since);
    let wait = 0;
    for (const [key, limit] of [[`user:${account}`, ACCOUNT_LIMIT], [`addr:${address}`, ADDRESS_LIMIT]] as const) {
      const rows = this.sql
        .exec<{ at: number }>("SELECT at FROM signin_failures WHERE key = ? ORDER BY at DESC LIMIT ?", key, limit)
        .toArray();
      if (rows.length >= limit) wait = Math.max(wait, Math.ceil((rows[limit - 1]!.at + WINDOW_MS - Date.now()) / 1000));
    }
    return wait;
  }

  fail(account: string, address: string): void {
    const now = Date.now();
    this.sql.exec("INSERT INTO signin_failures VALUES (?, ?), (?, ?)", `user:${account}`, now, `addr:${address}`, now);
  }

  succeed(account: string): void {
    this.sql.exec("DELETE FROM signin_failures WHERE key = ?", `user:${account}`);
  }
}
