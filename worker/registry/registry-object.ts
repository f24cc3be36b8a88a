/**
 * The one object that knows every site, account, session and API token, and keeps the audit
 * trail. It is off the relay path: a console's bytes never pass through here.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env, Role } from "../env.ts";
import { AccountsStore, type SessionRecord, type TokenInfo, type UserRow } from "./accounts-store.ts";
import { type AuditEvent, type AuditQuery, type AuditRow, AuditStore } from "./audit-store.ts";
import { ThrottleStore } from "./throttle-store.ts";
import { migrate, REGISTRY_MIGRATIONS } from "../storage/migrations.ts";

export type { SessionRecord } from "./accounts-store.ts";

export class Registry extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly accounts: AccountsStore;
  private readonly throttle: ThrottleStore;
  private readonly auditLog: AuditStore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    migrate(ctx.storage, REGISTRY_MIGRATIONS);
    this.accounts = new AccountsStore(this.sql);
    this.throttle = new ThrottleStore(this.sql);
    this.auditLog = new AuditStore(this.sql);
  }

  // ---- sites -----------------------------------------------------------------------------------

  /** false when the name is taken. */
  createSite(name: string): boolean {
    if (this.hasSite(name)) return false;
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

  // ---- accounts ----------------------------------------------------------------------------------

  createUser(username: string, role: Role, passwordHash: string): boolean {
    return this.accounts.createUser(username, role, passwordHash);
  }

  getUser(username: string): UserRow | null {
    return this.accounts.getUser(username);
  }

  listUsers() {
    return this.accounts.listUsers();
  }

  deleteUser(username: string): boolean {
    return this.accounts.deleteUser(username);
  }

  createSession(tokenHash: string, session: SessionRecord): void {
    this.accounts.createSession(tokenHash, session);
  }

  getSession(tokenHash: string): SessionRecord | null {
    return this.accounts.getSession(tokenHash);
  }

  deleteSession(tokenHash: string): void {
    this.accounts.deleteSession(tokenHash);
  }

  createToken(id: string, tokenHash: string, name: string, user: string): void {
    this.accounts.createToken(id, tokenHash, name, user);
  }

  tokenOwner(tokenHash: string): { id: string; user: string } | null {
    return this.accounts.tokenOwner(tokenHash);
  }

  listTokens(user: string | null): TokenInfo[] {
    return this.accounts.listTokens(user);
  }

  deleteToken(id: string, user: string | null): { user: string; name: string } | null {
    return this.accounts.deleteToken(id, user);
  }

  // ---- sign-in throttling ------------------------------------------------------------------------

  signInRetryAfter(account: string, address: string): number {
    return this.throttle.retryAfter(account, address);
  }

  signInFailed(account: string, address: string): void {
    this.throttle.fail(account, address);
  }

  signInSucceeded(account: string): void {
    this.throttle.succeed(account);
  }

  // ---- audit -------------------------------------------------------------------------------------

  audit(event: AuditEvent, at?: number): void {
    this.auditLog.record(event, at);
  }

  auditQuery(query: AuditQuery): AuditRow[] {
    return this.auditLog.query(query);
  }
}

export function registryOf(env: Env): DurableObjectStub<Registry> {
  return env.REGISTRY.get(env.REGISTRY.idFromName("registry"));
}
