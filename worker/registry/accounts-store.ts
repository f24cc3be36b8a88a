/** Users, their API tokens and sign-in sessions, in the registry's SQLite. Only digests of secrets are kept. */
import type { Role } from "../env.ts";

export type UserRow = {
  username: string;
  role: Role;
  password_hash: string;
  created_at: number;
};

export interface SessionRecord {
  user: string;
  role: Role;
  expiresAt: number;
}

export interface TokenInfo {
  id: string;
  name: string;
  user: string;
  createdAt: string;
}

export class AccountsStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    // Tables `users`, `sessions`, `api_tokens`: worker/storage/migrations.ts.
  }

  // ---- users -----------------------------------------------------------------------------------

  createUser(username: string, role: Role, passwordHash: string): boolean {
    if (this.getUser(username)) return false;
    this.sql.exec("INSERT INTO users VALUES (?, ?, ?, ?)", username, role, passwordHash, Date.now());
    return true;
  }

  getUser(username: string): UserRow | null {
    return this.sql.exec<UserRow>("SELECT * FROM users WHERE username = ?", username).toArray()[0] ?? null;
  }

  listUsers(): { username: string; role: Role; createdAt: string }[] {
    return this.sql
      .exec<UserRow>("SELECT * FROM users ORDER BY username")
      .toArray()
      .map((u) => ({ username: u.username, role: u.role, createdAt: new Date(u.created_at).toISOString() }));
  }

  /** Removes the user, their sessions and their API tokens. */
  deleteUser(username: string): boolean {
    if (!this.getUser(username)) return false;
    this.sql.exec("DELETE FROM users WHERE username = ?", username);
    this.sql.exec("DELETE FROM sessions WHERE user = ?", username);
    this.sql.exec("DELETE FROM api_tokens WHERE user = ?", username);
    return true;
  }

  // ---- sessions --------------------------------------------------------------------------------

  createSession(tokenHash: string, session: SessionRecord): void {
    this.sql.exec("DELETE FROM sessions WHERE expires_at < ?", Date.now());
    this.sql.exec("INSERT INTO sessions VALUES (?, ?, ?, ?)", tokenHash, session.user, session.role, session.expiresAt);
  }

  getSession(tokenHash: string): SessionRecord | null {
    const row = this.sql
      .exec<{ user: string; role: Role; expires_at: number }>("SELECT user, role, expires_at FROM sessions WHERE token_hash = ?", tokenHash)
      .toArray()[0];
    if (!row || row.expires_at < Date.now()) return null;
    return { user: row.user, role: row.role, expiresAt: row.expires_at };
  }

  deleteSession(tokenHash: string): void {
    this.sql.exec("DELETE FROM sessions WHERE token_hash = ?", tokenHash);
  }

  // ---- API tokens ------------------------------------------------------------------------------

  createToken(id: string, tokenHash: string, name: string, user: string): void {
    this.sql.exec("INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?)", id, tokenHash, name, user, Date.now());
  }

  tokenOwner(tokenHash: string): { id: string; user: string } | null {
    return this.sql.exec<{ id: string; user: string }>("SELECT id, user FROM api_tokens WHERE token_hash = ?", tokenHash).toArray()[0] ?? null;
  }

  listTokens(user: string | null): TokenInfo[] {
    const rows = user === null
      ? this.sql.exec<{ id: string; name: string; user: string; created_at: number }>("SELECT * FROM api_tokens ORDER BY created_at").toArray()
      : this.sql.exec<{ id: string; name: string; user: string; created_at: number }>("SELECT * FROM api_tokens WHERE user = ? ORDER BY created_at", user).toArray();
    return rows.map((r) => ({ id: r.id, name: r.name, user: r.user, createdAt: new Date(r.created_at).toISOString() }));
  }

  /** Deletes a token if `user` owns it (or `user` is null: an admin). */
  deleteToken(id: string, user: string | null): { user: string; name: string } | null {
    const row = this.sql.exec<{ user: string; name: string }>("SELECT user, name FROM api_tokens WHERE id = ?", id).toArray()[0];
    if (!row || (user !== null && row.user !== user)) return null;
    this.sql.exec("DELETE FROM api_tokens WHERE id = ?", id);
    return row;
  }
}
