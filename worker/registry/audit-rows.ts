/** What an audit row is, as the registry stores it and `GET /api/audit` returns it (the operator app reads it too). */
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
  /** Folded rows: how many events this row stands for, and when the newest happened. */
  count?: number;
  lastAt?: string;
}
