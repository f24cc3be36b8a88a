/**
 * The audit trail: who did what, when. Rows are written by the registry itself and, off the relay
 * path, by site objects (connectors, consoles, links).
 *
 * No role can make it forget:
 * - rows are kept 90 days, pruned by time from the registry's alarm (a schedule, not a write
 *   counter that hibernation resets);
 * - repetition is folded: past FOLD_AFTER events of one type by one actor in one clock hour, the
 *   rest of that hour goes into a single row with a `count` (and the newest event's detail and
 *   time), so one account can add at most a few hundred rows an hour however fast it acts;
 * - the row cap exists only as storage safety and is far above what 90 days of folded history
 *   can reach; were it ever reached, the oldest rows go first.
 */
import type { AuditEvent, AuditRow } from "./audit-rows.ts";

export type { AuditEvent, AuditRow };

export interface AuditQuery {
  type?: string;
  actor?: string;
  site?: string;
  since?: number;
  until?: number;
  /** Rows with an id below this (paging, newest first). */
  before?: number;
  limit: number;
}

export const KEEP_MS = 90 * 24 * 3600_000;
export const FOLD_AFTER = 60;
const HOUR_MS = 3600_000;
export const KEEP_ROWS = 10_000_000;

/** Connectors get a fresh id on every connection: a reconnect loop is one actor for folding. */
function foldActor(actor: string): string {
  return actor.startsWith("connector:") ? "connector:*" : actor;
}

export class AuditStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    // Tables `audit` (migration 1; count, last_at: 2) and `audit_budget` (2): worker/storage/migrations.ts.
  }

  record(event: AuditEvent, at = Date.now()): void {
    const key = [foldActor(event.actor), event.type, event.site ?? "", Math.floor(at / HOUR_MS)] as const;
    const budget = this.sql
      .exec<{ n: number; fold_id: number | null }>("SELECT n, fold_id FROM audit_budget WHERE actor = ? AND type = ? AND site = ? AND hour = ?", ...key)
      .toArray()[0];
    const n = (budget?.n ?? 0) + 1;
    const detail = event.detail ? JSON.stringify(event.detail) : null;
    if (n > FOLD_AFTER && budget?.fold_id != null) {
      // Still the hour's folded row: count this event and keep its detail (the newest).
      this.sql.exec(
        "UPDATE audit SET count = count + 1, last_at = ?, actor = ?, detail = ? WHERE id = ?",
        at,
        event.actor,
        detail,
        budget.fold_id,
      );
      this.sql.exec("UPDATE audit_budget SET n = ? WHERE actor = ? AND type = ? AND site = ? AND hour = ?", n, ...key);
      return;
    }
    const id = this.sql
      .exec<{ id: number }>(
        "INSERT INTO audit (at, type, actor, site, detail) VALUES (?, ?, ?, ?, ?) RETURNING id",
        at,
        event.type,
        event.actor,
        event.site ?? null,
        detail,
      )
      .one().id;
    this.sql.exec(
      "INSERT OR REPLACE INTO audit_budget (actor, type, site, hour, n, fold_id) VALUES (?, ?, ?, ?, ?, ?)",
      ...key,
      n,
      n > FOLD_AFTER ? id : null,
    );
  }

  /** Run on a schedule (the registry's alarm): retention by time, then storage safety. */
  prune(now = Date.now()): void {
    this.sql.exec("DELETE FROM audit WHERE coalesce(last_at, at) < ?", now - KEEP_MS);
    this.sql.exec("DELETE FROM audit WHERE id <= (SELECT max(id) FROM audit) - ?", KEEP_ROWS);
    this.sql.exec("DELETE FROM audit_budget WHERE hour < ?", Math.floor(now / HOUR_MS) - 1);
  }

  query(q: AuditQuery): AuditRow[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.type) {
      // "console" matches console.opened and console.closed.
      where.push("(type = ? OR type LIKE ?)");
      args.push(q.type, `${q.type}.%`);
    }
    if (q.actor) where.push("actor = ?"), args.push(q.actor);
    if (q.site) where.push("site = ?"), args.push(q.site);
    if (q.since !== undefined) where.push("coalesce(last_at, at) >= ?"), args.push(q.since);
    if (q.until !== undefined) where.push("at <= ?"), args.push(q.until);
    if (q.before !== undefined) where.push("id < ?"), args.push(q.before);
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`;
    type Row = { id: number; at: number; type: string; actor: string; site: string | null; detail: string | null; count: number; last_at: number | null };
    return this.sql
      .exec<Row>(sql, ...args, q.limit)
      .toArray()
      .map((r) => ({
        id: r.id,
        at: new Date(r.at).toISOString(),
        type: r.type,
        actor: r.actor,
        ...(r.site ? { site: r.site } : {}),
        ...(r.detail ? { detail: JSON.parse(r.detail) as Record<string, unknown> } : {}),
        ...(r.count > 1 ? { count: r.count, lastAt: new Date(r.last_at ?? r.at).toISOString() } : {}),
      }));
  }
}
