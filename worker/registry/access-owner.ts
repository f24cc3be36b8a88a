/**
 * The registry's side of least privilege (issue 19): groups, grants and access requests, their
 * audit rows, and telling sites what a user may reach whenever that shrinks. The registry object
 * holds this and exposes it as RPC (registry-object.ts); storage is grants-store.ts, the rule
 * worker/access/decide.ts.
 */
import type { AccessRequest, Grant, Group } from "../../shared/api/types.ts";
import type { GrantScope } from "../access/decide.ts";
import type { ReviewWhy } from "../access/review.ts";
import { accessDefaultRole } from "../auth/access.ts";
import type { Env, Role } from "../env.ts";
import type { AccountsStore } from "./accounts-store.ts";
import type { AuditStore } from "./audit-store.ts";
import type { GrantsStore, NewGrant } from "./grants-store.ts";
import { accessId, type IdentitiesStore } from "./identities-store.ts";

/** Pending access requests one person may have at once. */
export const MAX_PENDING_REQUESTS = 10;

export interface AccessOwnerDeps {
  sql: SqlStorage;
  env: Env;
  grants: GrantsStore;
  auditLog: AuditStore;
  accounts: AccountsStore;
  identities: IdentitiesStore;
  /** A stored user id's live account or built-in administrator, null if gone or disabled. */
  resolve(userId: string): { role: Role } | null;
  listSites(): string[];
  /** Sets the registry's one alarm for its earliest deadline (a grant's end among them). */
  scheduleAlarm(): Promise<void>;
}

export class AccessOwner {
  private readonly d: AccessOwnerDeps;

  constructor(deps: AccessOwnerDeps) {
    this.d = deps;
  }


  /** Who a name is, for grants and groups: an account, or a Cloudflare Access identity seen or set. */
  userRef(name: string): { id: string; name: string } | null {
    const account = this.d.accounts.getUser(name);
    if (account) return { id: account.id, name: account.username };
    const identity = this.d.identities.getAccess(name);
    return identity ? { id: accessId(identity.email), name: identity.email } : null;
  }

  /** Every grant that applies to a user now (theirs and their groups'), and the access version. */
  reachOf(userId: string): { grants: GrantScope[]; version: number } {
    return { grants: this.d.grants.scopesFor(userId), version: this.d.grants.version() };
  }

  listGroups(): Group[] {
    return this.d.grants.listGroups();
  }

  describeGroup(name: string): Group | null {
    return this.d.grants.describeGroup(name);
  }

  createGroup(name: string, actor: string): Group | null {
    if (!this.d.grants.createGroup(name, actor)) return null;
    this.d.auditLog.record({ type: "group.created", actor, detail: { group: name } });
    return this.d.grants.describeGroup(name);
  }

  async deleteGroup(name: string, actor: string): Promise<boolean> {
    const members = this.d.grants.deleteGroup(name);
    if (members === null) return false;
    this.d.grants.bump();
    this.d.auditLog.record({ type: "group.deleted", actor, detail: { group: name, members: members.length } });
    await this.reviewUsers(members, { kind: "removed", actor });
    return true;
  }

  /** Adds or removes a member; a removal ends at once what only the group's grants allowed. */
  async setMember(group: string, username: string, member: boolean, actor: string): Promise<Group | "unknown_group" | "unknown_user"> {
    if (!this.d.grants.hasGroup(group)) return "unknown_group";
    const user = this.userRef(username);
    if (!user) return "unknown_user";
    const changed = member ? this.d.grants.addMember(group, user.id, user.name) : this.d.grants.removeMember(group, user.id);
    if (changed) {
      this.d.grants.bump();
      this.d.auditLog.record({ type: member ? "group.member_added" : "group.member_removed", actor, detail: { group, user: user.name } });
      if (!member) await this.reviewUsers([user.id], { kind: "removed", actor });
    }
    return this.d.grants.describeGroup(group)!;
  }

  async createGrant(grant: NewGrant, why?: string): Promise<Grant> {
    const created = this.d.grants.createGrant(grant);
    this.d.grants.bump();
    this.d.auditLog.record({ type: "grant.created", actor: grant.createdBy, site: grant.site, detail: { ...created, ...(why ? { why } : {}) } });
    if (grant.until !== undefined) await this.d.scheduleAlarm();
    return created;
  }

  listGrants(filter: { userId?: string; group?: string }): Grant[] {
    return this.d.grants.listGrants(filter);
  }

  grantsFor(userId: string): Grant[] {
    return this.d.grants.grantsFor(userId);
  }

  /** Removes a grant; what only it allowed ends at once, in every site. */
  async deleteGrant(id: string, actor: string): Promise<Grant | null> {
    const gone = this.d.grants.deleteGrant(id);
    if (!gone) return null;
    this.d.grants.bump();
    this.d.auditLog.record({ type: "grant.removed", actor, site: gone.grant.site, detail: { ...gone.grant } });
    await this.reviewUsers(gone.users, { kind: "removed", actor }, [gone.grant.site]);
    return gone.grant;
  }

  /** Grants whose `until` has passed: gone, audited, and their consoles and links reviewed. */
  async expireGrants(now: number): Promise<void> {
    const expired = this.d.grants.takeExpired(now);
    if (expired.length === 0) return;
    this.d.grants.bump();
    for (const e of expired) {
      this.d.auditLog.record({ type: "grant.expired", actor: "system", site: e.grant.site, detail: { ...e.grant } });
      await this.reviewUsers(e.users, { kind: "ended", at: e.until }, [e.grant.site]);
    }
  }

  /**
   * A new pending request, or null when the person already has MAX_PENDING_REQUESTS waiting: each
   * one is a row, an audit row and a webhook message, so one account cannot flood the admins.
   */
  createAccessRequest(r: { userId: string; username: string; site: string; hypervisor: string; vm: string; level: Grant["level"]; minutes: number; reason: string }): AccessRequest | null {
    if (this.d.grants.listRequests({ userId: r.userId, status: "pending" }).length >= MAX_PENDING_REQUESTS) return null;
    const created = this.d.grants.createRequest(r);
    this.d.auditLog.record({ type: "access_request.created", actor: r.username, site: r.site, detail: { ...created } });
    return created;
  }

  listAccessRequests(filter: { userId?: string; status?: AccessRequest["status"] }): AccessRequest[] {
    return this.d.grants.listRequests(filter);
  }

  /** Approves (a grant from now for its minutes) or denies a pending request; never one's own. */
  async decideAccessRequest(
    id: string,
    approve: boolean,
    actor: { id: string; name: string },
    comment: string | undefined,
  ): Promise<{ ok: true; request: AccessRequest } | { ok: false; status: 403 | 404 | 409; code: string; message: string }> {
    const found = this.d.grants.request(id);
    if (!found) return { ok: false, status: 404, code: "unknown_request", message: `There is no access request ${id}.` };
    if (found.userId === actor.id) return { ok: false, status: 403, code: "own_request", message: "Nobody approves or denies their own access request." };
    const r = found.info;
    if (r.status !== "pending") return { ok: false, status: 409, code: "already_decided", message: `This request was already ${r.status}.` };
    let grantId: string | null = null;
    if (approve) {
      const now = Date.now();
      const grant = await this.createGrant(
        { userId: found.userId, username: r.user, site: r.site, hypervisor: r.hypervisor, vm: r.vm, level: r.level, from: now, until: now + r.minutes * 60_000, createdBy: actor.name, requestId: id },
        `access request ${id}`,
      );
      grantId = grant.id;
    }
    this.d.grants.decide(id, approve ? "approved" : "denied", actor.name, comment, grantId);
    const request = this.d.grants.request(id)!.info;
    this.d.auditLog.record({ type: approve ? "access_request.approved" : "access_request.denied", actor: actor.name, site: r.site, detail: { ...request } });
    return { ok: true, request };
  }

  /** A user's role now, whoever they are; null when they are gone or disabled (already ended). */
  private roleOf(userId: string): Role | null {
    const known = this.d.resolve(userId);
    if (known) return known.role;
    if (!userId.startsWith("access:")) return null;
    const identity = this.d.identities.getAccess(userId.slice("access:".length));
    if (identity?.disabled) return null;
    return identity?.role ?? accessDefaultRole(this.d.env);
  }

  /**
   * Tells sites what each user may reach now (role and grants) so they end what it no longer
   * allows: consoles close with the reason, tickets are dropped, share links revoked.
   */
  async reviewUsers(userIds: string[], why: ReviewWhy, sites = this.d.listSites()): Promise<void> {
    const version = this.d.grants.version();
    await Promise.all(
      [...new Set(userIds)].map(async (userId) => {
        const role = this.roleOf(userId);
        if (role === null) return;
        const reach = { role, grants: this.d.grants.scopesFor(userId), version };
        const results = await Promise.allSettled(sites.map((site) => this.d.env.SITE.get(this.d.env.SITE.idFromName(site)).reviewUserAccess(userId, reach, why)));
        results.forEach((r, i) => {
          if (r.status === "fulfilled") return;
          console.error("access review not delivered to site", sites[i], r.reason);
          // An "all" already waiting for this site says more: it stays.
          this.d.sql.exec(
            "INSERT INTO pending_revocations (site, user_id, scope, reason) VALUES (?, ?, 'review', ?) ON CONFLICT (site, user_id) DO UPDATE SET reason = excluded.reason WHERE scope = 'review'",
            sites[i]!,
            userId,
            JSON.stringify(why),
          );
        });
      }),
    );
    if (this.d.sql.exec<{ n: number }>("SELECT count(*) AS n FROM pending_revocations").one().n > 0) await this.d.scheduleAlarm();
  }
}
