/**
 * The one object that knows every site and every signed-in session. It is off the relay path:
 * a console's bytes never pass through here.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env, Role } from "../env.ts";

export interface SessionRecord {
  user: string;
  role: Role;
  expiresAt: number;
}

export class Registry extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS sites (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS sessions (
        token_hash TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL, expires_at INTEGER NOT NULL);
    `);
  }

  /** false when the name is taken. */
  createSite(name: string): boolean {
    const taken = this.sql.exec("SELECT 1 FROM sites WHERE name = ?", name).toArray().length > 0;
    if (taken) return false;
    this.sql.exec("INSERT INTO sites (name, created_at) VALUES (?, ?)", name, Date.now());
    return true;
  }

  deleteSite(name: string): void {
    this.sql.exec("DELETE FROM sites WHERE name = ?", name);
  }

  listSites(): string[] {
    return this.sql.exec<{ name: string }>("SELECT name FROM sites ORDER BY name").toArray().map((r) => r.name);
  }

  hasSite(name: string): boolean {
    return this.sql.exec("SELECT 1 FROM sites WHERE name = ?", name).toArray().length > 0;
  }

  createSession(tokenHash: string, session: SessionRecord): void {
    const now = Date.now();
    this.sql.exec("DELETE FROM sessions WHERE expires_at < ?", now);
    this.sql.exec(
      "INSERT INTO sessions (token_hash, user, role, expires_at) VALUES (?, ?, ?, ?)",
      tokenHash,
      session.user,
      session.role,
      session.expiresAt,
    );
  }

  getSession(tokenHash: string): SessionRecord | null {
    const row = this.sql
      .exec<{ user: string; role: Role; expires_at: number }>(
        "SELECT user, role, expires_at FROM sessions WHERE token_hash = ?",
        tokenHash,
      )
      .toArray()[0];
    if (!row || row.expires_at < Date.now()) return null;
    return { user: row.user, role: row.role, expiresAt: row.expires_at };
  }

  deleteSession(tokenHash: string): void {
    this.sql.exec("DELETE FROM sessions WHERE token_hash = ?", tokenHash);
  }
}

export function registryOf(env: Env): DurableObjectStub<Registry> {
  return env.REGISTRY.get(env.REGISTRY.idFromName("registry"));
}
