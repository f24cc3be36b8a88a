/**
 * The one object that knows every site, account, sign-in and API token, and keeps the audit
 * trail. It is off the relay path: a console's bytes never pass through here.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env, Role } from "../env.ts";
import { AccountsStore, type SignInRecord, type TokenInfo, type UserInfo, type UserPatch, type UserRow } from "./accounts-store.ts";
import { type AuditEvent, type AuditQuery, type AuditRow, AuditStore } from "./audit-store.ts";
import { type AccessIdentity, accessId, type BuiltInReport, IdentitiesStore } from "./identities-store.ts";
import { type ThrottleBlock, ThrottleStore } from "./throttle-store.ts";
import { assignNameKeys, migrate, REGISTRY_MIGRATIONS } from "../storage/migrations.ts";
import { GrantsStore, type NewGrant } from "./grants-store.ts";
import { AccessOwner } from "./access-owner.ts";
import type { ReviewWhy } from "../access/review.ts";

export type { SignInRecord } from "./accounts-store.ts";

/**
 * What a site must end for a user: everything (deleted, disabled), full control (now a viewer), or
 * whatever the decision no longer allows under their current role and grants ("review").
 */
export type AccessScope = "all" | "control" | "review";

/** The registry's alarm: audit retention, and retrying site objects that missed a revocation. */
const HOUSEKEEPING_MS = 3600_000;
const RETRY_MS = 30_000;

export class Registry extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly accounts: AccountsStore;
  private readonly throttle: ThrottleStore;
  private readonly auditLog: AuditStore;
  private readonly identities: IdentitiesStore;
  private readonly grants: GrantsStore;
  private readonly access: AccessOwner;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    migrate(ctx.storage, REGISTRY_MIGRATIONS);
    // Accounts an older version made after a rollback have no case-insensitive key yet.
    ctx.storage.transactionSync(() => assignNameKeys(this.sql));
    this.accounts = new AccountsStore(this.sql);
    this.throttle = new ThrottleStore(this.sql);
    this.auditLog = new AuditStore(this.sql);
    this.identities = new IdentitiesStore(this.sql);
    this.grants = new GrantsStore(this.sql);
    this.access = new AccessOwner({
      sql: this.sql,
      env,
      grants: this.grants,
      auditLog: this.auditLog,
      accounts: this.accounts,
      identities: this.identities,
      resolve: (id) => this.resolve(id),
      listSites: () => this.listSites(),
      scheduleAlarm: () => this.scheduleAlarm(),
    });
    // Housekeeping runs on a schedule from the first time the object starts.
    ctx.blockConcurrencyWhile(async () => {
      if ((await ctx.storage.getAlarm()) === null) await ctx.storage.setAlarm(Date.now() + HOUSEKEEPING_MS);
    });
  }

  /**
   * One alarm, three jobs: hourly housekeeping, retrying sites that missed a revocation, and the
   * exact moment the next grant ends (each alarm is a billed wake: only real deadlines are set).
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const housekeepingAt = this.sql.exec<{ value: number }>("SELECT value FROM access_meta WHERE key = 'housekeeping_at'").toArray()[0]?.value ?? 0;
    if (housekeepingAt <= now) {
      this.auditLog.prune();
      this.sql.exec("INSERT OR REPLACE INTO access_meta (key, value) VALUES ('housekeeping_at', ?)", now + HOUSEKEEPING_MS);
    }
    await this.access.expireGrants(now);
    const pending = this.sql
      .exec<{ site: string; user_id: string; scope: AccessScope; reason: string }>("SELECT * FROM pending_revocations")
      .toArray();
    for (const p of pending) {
      this.sql.exec("DELETE FROM pending_revocations WHERE site = ? AND user_id = ?", p.site, p.user_id);
      if (!this.hasSite(p.site)) continue;
      if (p.scope === "review") await this.access.reviewUsers([p.user_id], JSON.parse(p.reason) as ReviewWhy, [p.site]);
      else await this.tellSites([p.site], p.user_id, p.scope, p.reason);
    }
    await this.scheduleAlarm();
  }

  /** The earliest of: housekeeping, a retry (if any site missed a change), the next grant's end. */
  private async scheduleAlarm(): Promise<void> {
    const now = Date.now();
    const housekeepingAt = this.sql.exec<{ value: number }>("SELECT value FROM access_meta WHERE key = 'housekeeping_at'").toArray()[0]?.value ?? now + HOUSEKEEPING_MS;
    const retry = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM pending_revocations").one().n > 0;
    const expiry = this.grants.nextExpiry();
    const at = Math.min(Math.max(housekeepingAt, now), retry ? now + RETRY_MS : Infinity, expiry ?? Infinity);
    const current = await this.ctx.storage.getAlarm();
    if (current !== at) await this.ctx.storage.setAlarm(at);
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
    this.sql.exec("DELETE FROM pending_revocations WHERE site = ?", name);
    // A new site of the same name starts with no grants: access to the old one does not carry over,
    // nor does a request still waiting for it (approving it later would grant the new site).
    this.sql.exec("DELETE FROM grants WHERE site = ?", name);
    this.sql.exec("DELETE FROM access_requests WHERE site = ? AND status = 'pending'", name);
  }

  listSites(): string[] {
    return this.sql.exec<{ name: string }>("SELECT name FROM sites ORDER BY name").toArray().map((r) => r.name);
  }

  hasSite(name: string): boolean {
    return this.sql.exec("SELECT 1 FROM sites WHERE name = ?", name).toArray().length > 0;
  }

  // ---- accounts ----------------------------------------------------------------------------------

  /** The new user's id, or null when the name is taken. */
  createUser(username: string, role: Role, passwordHash: string): string | null {
    return this.accounts.createUser(username, role, passwordHash);
  }

  getUser(username: string): UserRow | null {
    return this.accounts.getUser(username);
  }

  userById(id: string): UserRow | null {
    return this.accounts.userById(id);
  }

  listUsers(): UserInfo[] {
    return this.accounts.listUsers();
  }

  /**
   * Removes a user and ends everything they had at once: sign-ins and API tokens here, and in every
   * site their consoles, unredeemed tickets and share links (with the links' live viewers).
   */
  async deleteUser(username: string, actor: string): Promise<UserInfo | null> {
    const gone = this.accounts.deleteUser(username);
    if (!gone) return null;
    // Deleting removes access: an email address must not come back through Cloudflare Access at
    // the default role, so it is remembered as a blocked Access identity with its last role
    // (PATCH {disabled:false} lets it in again, at that role, never higher).
    if (gone.username.includes("@")) this.identities.setAccess(gone.username, { disabled: true, role: gone.role });
    this.grants.forgetUser(gone.id);
    await this.endAccess([gone.id, accessId(gone.username)], "all", `Your access was removed by ${actor}.`);
    return gone;
  }

  /** Changes a user; disabling ends everything, lowering to viewer ends full control. */
  async updateUser(username: string, patch: UserPatch, actor: string): Promise<{ before: UserInfo; after: UserInfo } | null> {
    const changed = this.accounts.updateUser(username, patch);
    if (!changed) return null;
    const { before, after } = changed;
    // The same person may have signed in through Cloudflare Access before the account existed.
    await this.accessChanged(before, after, [after.id, accessId(username)], actor);
    return changed;
  }

  /** The one rule for ending access when a user, account or Access identity, loses some. */
  private async accessChanged(before: { role: Role | null; disabled: boolean } | null, after: { role: Role | null; disabled: boolean }, ids: string[], actor: string): Promise<void> {
    const roleChanged = after.role !== before?.role && after.role !== null;
    const disabledChanged = after.disabled !== (before?.disabled ?? false);
    if (after.disabled && !before?.disabled) await this.endAccess(ids, "all", `Your access was removed by ${actor}.`);
    // Every change of role or of being enabled is a new access version that each site is told
    // (a disable that also changes the role, a re-enable): a site compares the version a request
    // read with the newest it was told, so an older role it remembers can never win over this one.
    if (roleChanged || disabledChanged) {
      // Whatever the new role and the grants no longer allow ends; a viewer keeps view-only consoles.
      const message = after.role === "viewer" ? `Your role was changed to viewer by ${actor}: full control ended.` : `Your role was changed to ${after.role ?? "the default role"} by ${actor}.`;
      this.grants.bump();
      await this.access.reviewUsers(ids, { kind: "role", message });
    }
  }

  private async endAccess(ids: string[], scope: "all" | "control", reason: string): Promise<void> {
    const sites = this.listSites();
    await Promise.all(ids.map((id) => this.tellSites(sites, id, scope, reason)));
  }

  // ---- Cloudflare Access identities (worker/registry/identities-store.ts) ----------------------------

  /**
   * Who an Access user is now: their account if they have one (a disabled one refuses them),
   * else their identity's role (or the default role), null if blocked.
   */
  accessUser(email: string, defaultRole: Role): { id: string; name: string; role: Role } | null {
    const account = this.accounts.getUser(email);
    if (account) return account.disabled === 1 ? null : { id: account.id, name: account.username, role: account.role };
    const identity = this.identities.getAccess(email);
    // Remembered from its first request (one write, once): the Users screen lists it to block or lower.
    if (!identity) this.identities.setAccess(email, {});
    if (identity?.disabled) return null;
    return { id: accessId(email), name: email, role: identity?.role ?? defaultRole };
  }

  /** Sets an Access identity's role or blocks it (seen before or not); ends what it may no longer do. */
  async setAccessIdentity(email: string, patch: { role?: Role; disabled?: boolean }, defaultRole: Role, actor: string) {
    const { before, after } = this.identities.setAccess(email, patch);
    const was = before ? { role: before.role ?? defaultRole, disabled: before.disabled } : { role: defaultRole, disabled: false };
    const now = { role: after.role ?? defaultRole, disabled: after.disabled };
    await this.accessChanged(was, now, [accessId(email)], actor);
    return { before: was, after: now };
  }

  getAccessIdentity(email: string): AccessIdentity | null {
    return this.identities.getAccess(email);
  }

  listAccessIdentities(): AccessIdentity[] {
    return this.identities.listAccess();
  }

  // ---- the built-in administrator (worker/auth/builtin-admin.ts) -----------------------------------

  /**
   * The id of the built-in administrator for these secrets (null: none, or replaced ones). New
   * secrets end the previous ones' sign-ins, tokens, consoles, tickets and share links at once.
   */
  async builtInAdmin(current: BuiltInReport | null, versionAt: number | null = null): Promise<string | null> {
    const { id, ended } = this.identities.builtInGeneration(current, versionAt);
    if (ended) {
      this.accounts.endSignIns(ended);
      this.accounts.endTokens(ended);
      this.auditLog.record({ type: "admin.secrets_changed", actor: "system", detail: { ended, username: current?.username ?? null } });
      await this.endAccess([ended], "all", "The administrator's credentials were changed.");
    }
    return id;
  }

  // ---- groups, grants, access requests (worker/registry/access-owner.ts) ------------------------------

  userRef(name: string) {
    return this.access.userRef(name);
  }

  reachOf(userId: string) {
    return this.access.reachOf(userId);
  }

  listGroups() {
    return this.access.listGroups();
  }

  describeGroup(name: string) {
    return this.access.describeGroup(name);
  }

  createGroup(name: string, actor: string) {
    return this.access.createGroup(name, actor);
  }

  deleteGroup(name: string, actor: string) {
    return this.access.deleteGroup(name, actor);
  }

  setMember(group: string, username: string, member: boolean, actor: string) {
    return this.access.setMember(group, username, member, actor);
  }

  createGrant(grant: NewGrant) {
    return this.access.createGrant(grant);
  }

  listGrants(filter: { userId?: string; group?: string }) {
    return this.access.listGrants(filter);
  }

  grantsFor(userId: string) {
    return this.access.grantsFor(userId);
  }

  deleteGrant(id: string, actor: string) {
    return this.access.deleteGrant(id, actor);
  }

  createAccessRequest(r: Parameters<AccessOwner["createAccessRequest"]>[0]) {
    return this.access.createAccessRequest(r);
  }

  listAccessRequests(filter: Parameters<AccessOwner["listAccessRequests"]>[0]) {
    return this.access.listAccessRequests(filter);
  }

  decideAccessRequest(id: string, approve: boolean, actor: { id: string; name: string }, comment: string | undefined) {
    return this.access.decideAccessRequest(id, approve, actor, comment);
  }

  /** Tells each site object; one that cannot be reached is retried from the alarm until it hears. */
  private async tellSites(sites: string[], userId: string, scope: "all" | "control", reason: string): Promise<void> {
    const results = await Promise.allSettled(
      sites.map((site) => this.env.SITE.get(this.env.SITE.idFromName(site)).endUserAccess(userId, scope, reason)),
    );
    let failed = false;
    results.forEach((r, i) => {
      if (r.status === "fulfilled") return;
      failed = true;
      console.error("revocation not delivered to site", sites[i], r.reason);
      this.sql.exec(
        "INSERT OR REPLACE INTO pending_revocations (site, user_id, scope, reason) VALUES (?, ?, ?, ?)",
        sites[i]!,
        userId,
        scope,
        reason,
      );
    });
    if (failed) await this.scheduleAlarm();
  }

  /**
   * Who a stored user id is right now, or null if the account is gone or disabled. The role is read
   * here on every request, so a lowered role applies at once to sign-ins and tokens alike.
   */
  private resolve(userId: string): { id: string; name: string; role: Role } | null {
    const builtIn = this.identities.builtInById(userId);
    if (builtIn) return builtIn;
    const user = this.accounts.userById(userId);
    return user && user.disabled !== 1 ? { id: user.id, name: user.username, role: user.role } : null;
  }

  /** The live user behind a sign-in cookie's digest, in one call. */
  signInUser(tokenHash: string): { id: string; name: string; role: Role } | null {
    const signIn = this.accounts.getSignIn(tokenHash);
    return signIn ? this.resolve(signIn.userId) : null;
  }

  /** The live user behind an API token's digest, in one call. */
  tokenUser(tokenHash: string): { id: string; name: string; role: Role } | null {
    const owner = this.accounts.tokenOwner(tokenHash);
    return owner ? this.resolve(owner.userId) : null;
  }

  createSignIn(tokenHash: string, signIn: SignInRecord): void {
    this.accounts.createSignIn(tokenHash, signIn);
  }

  getSignIn(tokenHash: string): SignInRecord | null {
    return this.accounts.getSignIn(tokenHash);
  }

  deleteSignIn(tokenHash: string): void {
    this.accounts.deleteSignIn(tokenHash);
  }

  createToken(id: string, tokenHash: string, name: string, user: string, userId: string, expiresAt: number | null = null): void {
    this.accounts.createToken(id, tokenHash, name, user, userId, expiresAt);
  }

  tokenOwner(tokenHash: string): { id: string; userId: string; user: string } | null {
    return this.accounts.tokenOwner(tokenHash);
  }

  listTokens(userId: string | null): TokenInfo[] {
    return this.accounts.listTokens(userId);
  }

  deleteToken(id: string, userId: string | null): { user: string; name: string } | null {
    return this.accounts.deleteToken(id, userId);
  }

  // ---- sign-in throttling ------------------------------------------------------------------------

  /** Checks the limits and records the attempt in one step, before the password is verified. */
  signInAttempt(account: string, address: string): { ok: true; attempt: string } | { ok: false; retryAfter: number } {
    return this.throttle.attempt(account, address);
  }

  signInSucceeded(attempt: string, account: string, address: string): void {
    this.throttle.succeeded(attempt, account, address);
  }

  signInBlocks(): ThrottleBlock[] {
    return this.throttle.blocks();
  }

  clearSignInFailures(account: string | null, address: string | null): number {
    return this.throttle.clear(account === null ? null : account.toLowerCase(), address);
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
