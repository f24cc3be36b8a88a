/**
 * The audit trail: who did what, when. Rows are written by the registry itself and, off the relay
 * path, by site objects (connectors, consoles, links). Retention is bounded by age and by count.
 */
export interface AuditEvent {
  type: string;
  /** A user name, `link:<id>`, `connector:<id>` or `system`. */
  actor: string;
  site?: string;
  detail?: Record<string, unknown>;
}

export interface AuditRow extends AuditEvent {
  id: number;
  at: string;
}

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

const KEEP_MS = 90 * 24 * 3600_000;
const KEEP_ROWS = 100_000;

export class AuditStore {
  private readonly sql: SqlStorage;
  private writes = 0;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    // Table `audit`: worker/storage/migrations.ts.
  }

  record(event: AuditEvent, at = Date.now()): void {
    this.sql.exec(
      "INSERT INTO audit (at, type, actor, site, detail) VALUES (?, ?, ?, ?, ?)",
      at,
      event.type,
      event.actor,
      event.site ?? null,
      event.detail ? JSON.stringify(event.detail) : null,
    );
    if (++this.writes % 500 === 0) this.prune();
  }

  prune(): void {
    this.sql.exec("DELETE FROM audit WHERE at < ?", Date.now() - KEEP_MS);
    this.sql.exec("DELETE FROM audit WHERE id <= (SELECT max(id) FROM audit) - ?", KEEP_ROWS);
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
    if (q.since !== undefined) where.push("at >= ?"), args.push(q.since);
    if (q.until !== undefined) where.push("at <= ?"), args.push(q.until);
    if (q.before !== undefined) where.push("id < ?"), args.push(q.before);
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`;
    return this.sql
      .exec<{ id: number; at: number; type: string; actor: string; site: string | null; detail: string | null }>(sql, ...args, q.limit)
      .toArray()
      .map((r) => ({
        id: r.id,
        at: new Date(r.at).toISOString(),
        type: r.type,
        actor: r.actor,
        ...(r.site ? { site: r.site } : {}),
        ...(r.detail ? { detail: JSON.parse(r.detail) as Record<string, unknown> } : {}),
      }));
  }
}
