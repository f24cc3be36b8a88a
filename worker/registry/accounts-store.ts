/**
 * Users, their API tokens and sign-ins, in the registry's SQLite. Only digests of secrets
 * are kept. Every user has a stable id: sign-ins, tokens, tickets, links and consoles belong to the
 * id, never to the name, so a new account that reuses a name inherits nothing of the old one.
 */
import type { Role, Token } from "../../shared/api/types.ts";

/** The id of the administrator from the ADMIN_USERNAME / ADMIN_PASSWORD secrets (it has no row). */
export const BUILT_IN_ID = "builtin";

export type UserRow = {
  id: string;
  username: string;
  role: Role;
  password_hash: string;
  created_at: number;
  disabled: number;
};

export interface UserInfo {
  id: string;
  username: string;
  role: Role;
  disabled: boolean;
  createdAt: string;
}

export interface SignInRecord {
  userId: string;
  user: string;
  expiresAt: number;
}

/** As `GET /api/tokens` lists it; `lastUsedAt` to the minute (LAST_USED_EVERY_MS). */
export type TokenInfo = Token;

/** A token's last use is written at most this often: not a storage write per request. */
export const LAST_USED_EVERY_MS = 60_000;

/** Usernames are one account whatever their case (the display form is kept as created). */
export const nameKey = (username: string) => username.toLowerCase();

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export interface UserPatch {
  role?: Role;
  passwordHash?: string;
  disabled?: boolean;
}

function info(u: UserRow): UserInfo {
  return { id: u.id, username: u.username, role: u.role, disabled: u.disabled === 1, createdAt: new Date(u.created_at).toISOString() };
}

export class AccountsStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    // Tables `users`, `sessions` (the sign-ins: a storage name, kept), `api_tokens` (migration 1; user ids: 2; name_key, token expiry: 3): worker/storage/migrations.ts.
  }

  // ---- users -----------------------------------------------------------------------------------

  /** The new user's id, or null when the name is taken. */
  createUser(username: string, role: Role, passwordHash: string): string | null {
    if (this.getUser(username)) return null;
    const id = crypto.randomUUID();
    this.sql.exec(
      "INSERT INTO users (username, role, password_hash, created_at, id, disabled, name_key) VALUES (?, ?, ?, ?, ?, 0, ?)",
      username,
      role,
      passwordHash,
      Date.now(),
      id,
      nameKey(username),
    );
    return id;
  }

  getUser(username: string): UserRow | null {
    return this.sql.exec<UserRow>("SELECT * FROM users WHERE name_key = ?", nameKey(username)).toArray()[0] ?? null;
  }

  userById(id: string): UserRow | null {
    return this.sql.exec<UserRow>("SELECT * FROM users WHERE id = ?", id).toArray()[0] ?? null;
  }

  listUsers(): UserInfo[] {
    return this.sql.exec<UserRow>("SELECT * FROM users ORDER BY username").toArray().map(info);
  }

  /** Applies a change; a disabled account or a new password ends the user's sign-ins. */
  updateUser(username: string, patch: UserPatch): { before: UserInfo; after: UserInfo } | null {
    const row = this.getUser(username);
    if (!row) return null;
    if (patch.role !== undefined) this.sql.exec("UPDATE users SET role = ? WHERE id = ?", patch.role, row.id);
    if (patch.passwordHash !== undefined) this.sql.exec("UPDATE users SET password_hash = ? WHERE id = ?", patch.passwordHash, row.id);
    if (patch.disabled !== undefined) this.sql.exec("UPDATE users SET disabled = ? WHERE id = ?", patch.disabled ? 1 : 0, row.id);
    if (patch.disabled || patch.passwordHash !== undefined) this.endSignIns(row.id);
    if (patch.disabled) this.endTokens(row.id);
    return { before: info(row), after: info(this.userById(row.id)!) };
  }

  /** Removes the user, their sign-ins and their API tokens; returns who it was. */
  deleteUser(username: string): UserInfo | null {
    const row = this.getUser(username);
    if (!row) return null;
    this.sql.exec("DELETE FROM users WHERE id = ?", row.id);
    this.endSignIns(row.id);
    this.endTokens(row.id);
    return info(row);
  }

  /** Ends a user id's sign-ins (also the built-in admin's, whose secrets changed). */
  endSignIns(userId: string): void {
    this.sql.exec("DELETE FROM sessions WHERE user_id = ?", userId);
  }

  endTokens(userId: string): void {
    this.sql.exec("DELETE FROM api_tokens WHERE user_id = ?", userId);
  }

  // ---- sign-ins --------------------------------------------------------------------------------

  createSignIn(tokenHash: string, signIn: SignInRecord): void {
    this.sql.exec("DELETE FROM sessions WHERE expires_at < ?", Date.now());
    this.sql.exec(
      "INSERT INTO sessions (token_hash, user, role, expires_at, user_id) VALUES (?, ?, '', ?, ?)",
      tokenHash,
      signIn.user,
      signIn.expiresAt,
      signIn.userId,
    );
  }

  getSignIn(tokenHash: string): SignInRecord | null {
    const row = this.sql
      .exec<{ user: string; user_id: string; expires_at: number }>("SELECT user, user_id, expires_at FROM sessions WHERE token_hash = ?", tokenHash)
      .toArray()[0];
    if (!row || row.expires_at < Date.now()) return null;
    return { userId: row.user_id, user: row.user, expiresAt: row.expires_at };
  }

  deleteSignIn(tokenHash: string): void {
    this.sql.exec("DELETE FROM sessions WHERE token_hash = ?", tokenHash);
  }

  // ---- API tokens ------------------------------------------------------------------------------

  /** `expiresAt` null: the token never expires. Expired tokens are cleared here, not per request. */
  createToken(id: string, tokenHash: string, name: string, user: string, userId: string, expiresAt: number | null = null): void {
    this.sql.exec("DELETE FROM api_tokens WHERE expires_at < ?", Date.now());
    this.sql.exec(
      "INSERT INTO api_tokens (id, token_hash, name, user, created_at, user_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      id,
      tokenHash,
      name,
      user,
      Date.now(),
      userId,
      expiresAt,
    );
  }

  /** The owner of a live (unexpired) token; notes its use at most once a LAST_USED_EVERY_MS. */
  tokenOwner(tokenHash: string): { id: string; userId: string; user: string } | null {
    type Row = { id: string; user_id: string; user: string; expires_at: number | null; last_used_at: number | null };
    const row = this.sql.exec<Row>("SELECT id, user_id, user, expires_at, last_used_at FROM api_tokens WHERE token_hash = ?", tokenHash).toArray()[0];
    const now = Date.now();
    if (!row || (row.expires_at !== null && row.expires_at <= now)) return null;
    if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_EVERY_MS) {
      this.sql.exec("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", now, row.id);
    }
    return { id: row.id, userId: row.user_id, user: row.user };
  }

  /** `userId` null: every token (an admin). */
  listTokens(userId: string | null): TokenInfo[] {
    type Row = { id: string; name: string; user: string; created_at: number; expires_at: number | null; last_used_at: number | null };
    const rows = userId === null
      ? this.sql.exec<Row>("SELECT * FROM api_tokens ORDER BY created_at").toArray()
      : this.sql.exec<Row>("SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at", userId).toArray();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      user: r.user,
      createdAt: new Date(r.created_at).toISOString(),
      expiresAt: iso(r.expires_at),
      lastUsedAt: iso(r.last_used_at),
    }));
  }

  /** Deletes a token if `userId` owns it (or `userId` is null: an admin). */
  deleteToken(id: string, userId: string | null): { user: string; name: string } | null {
    const row = this.sql.exec<{ user: string; name: string; user_id: string }>("SELECT user, name, user_id FROM api_tokens WHERE id = ?", id).toArray()[0];
    if (!row || (userId !== null && row.user_id !== userId)) return null;
    this.sql.exec("DELETE FROM api_tokens WHERE id = ?", id);
    return { user: row.user, name: row.name };
  }
}
