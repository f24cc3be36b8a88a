/**
 * Groups, grants and access requests (issue 19): the registry is their one owner. Tables
 * `groups`, `group_members`, `grants`, `access_requests`, `access_meta`: migration 4 in
 * worker/storage/migrations.ts. Users are kept by id (names are reusable), with the name for lists.
 */
import type { AccessLevel, AccessRequest, Grant, Group } from "../../shared/api/types.ts";
import type { GrantScope } from "../access/decide.ts";

type GrantRow = {
  id: string;
  user_id: string | null;
  username: string | null;
  group_key: string | null;
  site: string;
  hypervisor: string | null;
  vm: string | null;
  vm_pattern: string | null;
  level: AccessLevel;
  from_at: number | null;
  until_at: number | null;
  created_at: number;
  created_by: string;
  request_id: string | null;
};

type RequestRow = {
  id: string;
  user_id: string;
  username: string;
  site: string;
  hypervisor: string;
  vm: string;
  level: AccessLevel;
  minutes: number;
  reason: string;
  status: AccessRequest["status"];
  created_at: number;
  decided_by: string | null;
  decided_at: number | null;
  comment: string | null;
  grant_id: string | null;
};

export interface NewGrant {
  userId?: string;
  username?: string;
  group?: string;
  site: string;
  hypervisor?: string;
  vm?: string;
  vmPattern?: string;
  level: AccessLevel;
  from?: number;
  until?: number;
  createdBy: string;
  requestId?: string;
}

export const groupKey = (name: string) => name.toLowerCase();
const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString());

export function scopeOf(r: GrantRow): GrantScope {
  return { site: r.site, hypervisor: r.hypervisor, vm: r.vm, vmPattern: r.vm_pattern, level: r.level, from: r.from_at, until: r.until_at };
}

export class GrantsStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  /**
   * A counter that grows with every change to who may reach what. Sites keep the newest access
   * they were told (with its number), so a request that read older grants cannot outrun a removal.
   */
  version(): number {
    return this.sql.exec<{ value: number }>("SELECT value FROM access_meta WHERE key = 'version'").toArray()[0]?.value ?? 0;
  }

  bump(): number {
    this.sql.exec("INSERT INTO access_meta (key, value) VALUES ('version', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1");
    return this.version();
  }

  // ---- groups ----------------------------------------------------------------------------------

  private group(name: string): { name_key: string; name: string; created_at: number } | null {
    return this.sql.exec<{ name_key: string; name: string; created_at: number }>("SELECT * FROM groups WHERE name_key = ?", groupKey(name)).toArray()[0] ?? null;
  }

  hasGroup(name: string): boolean {
    return this.group(name) !== null;
  }

  describeGroup(name: string): Group | null {
    const g = this.group(name);
    if (!g) return null;
    const members = this.sql
      .exec<{ username: string }>("SELECT username FROM group_members WHERE group_key = ? ORDER BY username", g.name_key)
      .toArray()
      .map((m) => m.username);
    return { name: g.name, members, createdAt: new Date(g.created_at).toISOString() };
  }

  listGroups(): Group[] {
    return this.sql
      .exec<{ name: string }>("SELECT name FROM groups ORDER BY name_key")
      .toArray()
      .map((g) => this.describeGroup(g.name)!);
  }

  /** false when the name is taken. */
  createGroup(name: string, actor: string): boolean {
    if (this.group(name)) return false;
    this.sql.exec("INSERT INTO groups (name_key, name, created_at, created_by) VALUES (?, ?, ?, ?)", groupKey(name), name, Date.now(), actor);
    return true;
  }

  /** The group's members' ids (their access must be reviewed), or null if there is no such group. Its grants go with it. */
  deleteGroup(name: string): string[] | null {
    const g = this.group(name);
    if (!g) return null;
    const members = this.memberIds(g.name_key);
    this.sql.exec("DELETE FROM group_members WHERE group_key = ?", g.name_key);
    this.sql.exec("DELETE FROM grants WHERE group_key = ?", g.name_key);
    this.sql.exec("DELETE FROM groups WHERE name_key = ?", g.name_key);
    return members;
  }

  private memberIds(key: string): string[] {
    return this.sql.exec<{ user_id: string }>("SELECT user_id FROM group_members WHERE group_key = ?", key).toArray().map((r) => r.user_id);
  }

  /** Whether it changed anything. */
  addMember(group: string, userId: string, username: string): boolean {
    const key = groupKey(group);
    if (this.sql.exec("SELECT 1 FROM group_members WHERE group_key = ? AND user_id = ?", key, userId).toArray().length) return false;
    this.sql.exec("INSERT INTO group_members (group_key, user_id, username, added_at) VALUES (?, ?, ?, ?)", key, userId, username, Date.now());
    return true;
  }

  removeMember(group: string, userId: string): boolean {
    const key = groupKey(group);
    const had = this.sql.exec("SELECT 1 FROM group_members WHERE group_key = ? AND user_id = ?", key, userId).toArray().length > 0;
    this.sql.exec("DELETE FROM group_members WHERE group_key = ? AND user_id = ?", key, userId);
    return had;
  }

  /** A deleted user leaves every group and loses their own grants and pending requests. */
  forgetUser(userId: string): void {
    this.sql.exec("DELETE FROM group_members WHERE user_id = ?", userId);
    this.sql.exec("DELETE FROM grants WHERE user_id = ?", userId);
    this.sql.exec("DELETE FROM access_requests WHERE user_id = ? AND status = 'pending'", userId);
  }

  // ---- grants ----------------------------------------------------------------------------------

  createGrant(g: NewGrant): Grant {
    const id = crypto.randomUUID();
    const group = g.group ? this.group(g.group) : null;
    this.sql.exec(
      `INSERT INTO grants (id, user_id, username, group_key, site, hypervisor, vm, vm_pattern, level, from_at, until_at, created_at, created_by, request_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      id,
      g.userId ?? null,
      g.username ?? null,
      group?.name_key ?? null,
      g.site,
      g.hypervisor ?? null,
      g.vm ?? null,
      g.vmPattern ?? null,
      g.level,
      g.from ?? null,
      g.until ?? null,
      Date.now(),
      g.createdBy,
      g.requestId ?? null,
    );
    return this.grant(id)!;
  }

  private row(id: string): GrantRow | null {
    return this.sql.exec<GrantRow>("SELECT * FROM grants WHERE id = ?", id).toArray()[0] ?? null;
  }

  private describe(r: GrantRow): Grant {
    const group = r.group_key ? this.group(r.group_key) : null;
    return {
      id: r.id,
      ...(r.username !== null ? { user: r.username } : {}),
      ...(group ? { group: group.name } : {}),
      site: r.site,
      ...(r.hypervisor !== null ? { hypervisor: r.hypervisor } : {}),
      ...(r.vm !== null ? { vm: r.vm } : {}),
      ...(r.vm_pattern !== null ? { vmPattern: r.vm_pattern } : {}),
      level: r.level,
      ...(r.from_at !== null ? { from: iso(r.from_at) } : {}),
      ...(r.until_at !== null ? { until: iso(r.until_at) } : {}),
      createdBy: r.created_by,
      createdAt: new Date(r.created_at).toISOString(),
      ...(r.request_id !== null ? { requestId: r.request_id } : {}),
    };
  }

  grant(id: string): Grant | null {
    const r = this.row(id);
    return r ? this.describe(r) : null;
  }

  /** Grants as an admin lists them: all, one user's own (by id) or one group's. */
  listGrants(filter: { userId?: string; group?: string } = {}): Grant[] {
    let rows: GrantRow[];
    if (filter.userId !== undefined) rows = this.sql.exec<GrantRow>("SELECT * FROM grants WHERE user_id = ? ORDER BY created_at", filter.userId).toArray();
    else if (filter.group !== undefined) rows = this.sql.exec<GrantRow>("SELECT * FROM grants WHERE group_key = ? ORDER BY created_at", groupKey(filter.group)).toArray();
    else rows = this.sql.exec<GrantRow>("SELECT * FROM grants ORDER BY created_at").toArray();
    return rows.map((r) => this.describe(r));
  }

  /** Every grant that applies to a user: their own and their groups'. */
  private rowsFor(userId: string): GrantRow[] {
    return this.sql
      .exec<GrantRow>(
        "SELECT * FROM grants WHERE user_id = ? OR group_key IN (SELECT group_key FROM group_members WHERE user_id = ?) ORDER BY created_at",
        userId,
        userId,
      )
      .toArray();
  }

  scopesFor(userId: string): GrantScope[] {
    return this.rowsFor(userId).map(scopeOf);
  }

  /** What a person sees of their own access (GET /api/grants for non-admins). */
  grantsFor(userId: string): Grant[] {
    return this.rowsFor(userId).map((r) => this.describe(r));
  }

  /** The users a grant reaches: its user, or its group's members. */
  private reached(r: GrantRow): string[] {
    return r.user_id !== null ? [r.user_id] : r.group_key !== null ? this.memberIds(r.group_key) : [];
  }

  /** Removes a grant; returns it and whose access to review, or null if unknown. */
  deleteGrant(id: string): { grant: Grant; users: string[] } | null {
    const r = this.row(id);
    if (!r) return null;
    const out = { grant: this.describe(r), users: this.reached(r) };
    this.sql.exec("DELETE FROM grants WHERE id = ?", id);
    return out;
  }

  /** Grants whose window has closed by `now`: removed here, returned with whose access to review. */
  takeExpired(now: number): { grant: Grant; until: number; users: string[] }[] {
    const rows = this.sql.exec<GrantRow>("SELECT * FROM grants WHERE until_at IS NOT NULL AND until_at <= ?", now).toArray();
    const out = rows.map((r) => ({ grant: this.describe(r), until: r.until_at!, users: this.reached(r) }));
    this.sql.exec("DELETE FROM grants WHERE until_at IS NOT NULL AND until_at <= ?", now);
    return out;
  }

  /** The next time a grant ends: the one deadline the registry's alarm must meet for grants. */
  nextExpiry(): number | null {
    return this.sql.exec<{ t: number | null }>("SELECT min(until_at) AS t FROM grants").one().t;
  }

  // ---- access requests ---------------------------------------------------------------------------

  createRequest(r: { userId: string; username: string; site: string; hypervisor: string; vm: string; level: AccessLevel; minutes: number; reason: string }): AccessRequest {
    const id = crypto.randomUUID();
    this.sql.exec(
      `INSERT INTO access_requests (id, user_id, username, site, hypervisor, vm, level, minutes, reason, status, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)`,
      id,
      r.userId,
      r.username,
      r.site,
      r.hypervisor,
      r.vm,
      r.level,
      r.minutes,
      r.reason,
      Date.now(),
    );
    return this.request(id)!.info;
  }

  request(id: string): { userId: string; info: AccessRequest } | null {
    const r = this.sql.exec<RequestRow>("SELECT * FROM access_requests WHERE id = ?", id).toArray()[0];
    return r ? { userId: r.user_id, info: describeRequest(r) } : null;
  }

  listRequests(filter: { userId?: string; status?: AccessRequest["status"] }): AccessRequest[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.userId !== undefined) (where.push("user_id = ?"), args.push(filter.userId));
    if (filter.status !== undefined) (where.push("status = ?"), args.push(filter.status));
    const sql = `SELECT * FROM access_requests ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC LIMIT 500`;
    return this.sql.exec<RequestRow>(sql, ...args).toArray().map(describeRequest);
  }

  /** Records a decision on a pending request; false if it was decided already. */
  decide(id: string, status: "approved" | "denied", actor: string, comment: string | undefined, grantId: string | null): boolean {
    const r = this.sql.exec<RequestRow>("SELECT * FROM access_requests WHERE id = ? AND status = 'pending'", id).toArray()[0];
    if (!r) return false;
    this.sql.exec(
      "UPDATE access_requests SET status = ?, decided_by = ?, decided_at = ?, comment = ?, grant_id = ? WHERE id = ?",
      status,
      actor,
      Date.now(),
      comment ?? null,
      grantId,
      id,
    );
    return true;
  }
}

function describeRequest(r: RequestRow): AccessRequest {
  return {
    id: r.id,
    user: r.username,
    site: r.site,
    hypervisor: r.hypervisor,
    vm: r.vm,
    level: r.level,
    minutes: r.minutes,
    reason: r.reason,
    status: r.status,
    createdAt: new Date(r.created_at).toISOString(),
    ...(r.decided_by !== null ? { decidedBy: r.decided_by } : {}),
    ...(r.decided_at !== null ? { decidedAt: new Date(r.decided_at).toISOString() } : {}),
    ...(r.comment !== null ? { comment: r.comment } : {}),
    ...(r.grant_id !== null ? { grantId: r.grant_id } : {}),
  };
}
