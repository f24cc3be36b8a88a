/**
 * The one rule for who may reach which VM (issue 19). Pure: the registry owns roles, grants and
 * groups, and every route, ticket, share link and review of live consoles asks this function with
 * what the registry says, so a listing can never show what opening would refuse.
 */
import type { AccessLevel, Role } from "../../shared/api/types.ts";

/** Levels in order: each includes the ones before it. */
export const LEVELS = ["view", "control", "share"] as const satisfies readonly AccessLevel[];

/** A grant as the decision needs it (the registry's rows carry more: who, why, since when). */
export interface GrantScope {
  site: string;
  /** None: the whole site. */
  hypervisor?: string | null;
  /** One VM by id. */
  vm?: string | null;
  /** A glob (`*`, `?`) on the VM's name. */
  vmPattern?: string | null;
  level: AccessLevel;
  /** ms since the epoch; outside [from, until) the grant gives nothing. */
  from?: number | null;
  until?: number | null;
}

export interface VmRef {
  site: string;
  hypervisor: string;
  /** The VM's id. */
  id: string;
  /** Its name as the connector reports it (patterns match it); the id when it is not known. */
  name: string;
}

/** What a role alone gives on every VM: operators and admins everything, viewers view-only. */
export function roleLevel(role: Role): AccessLevel | null {
  switch (role) {
    case "admin":
    case "operator":
      return "share";
    case "viewer":
      return "view";
    default:
      // member: nothing but its grants; auditor: the audit trail and live sessions, never a console.
      return null;
  }
}

/** Whether `have` includes `need`. */
export function atLeast(have: AccessLevel | null, need: AccessLevel): boolean {
  return have !== null && LEVELS.indexOf(have) >= LEVELS.indexOf(need);
}

function higher(a: AccessLevel | null, b: AccessLevel | null): AccessLevel | null {
  if (a === null) return b;
  if (b === null) return a;
  return LEVELS.indexOf(a) >= LEVELS.indexOf(b) ? a : b;
}

/**
 * `*` any run of characters, `?` one; everything else literal; the whole name must match. Matched
 * by hand, not as a regular expression: at most O(pattern × name) steps whatever the pattern
 * (`*a*a*a*…b` would make a backtracking regex take exponential time).
 */
export function globMatches(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1;
  let resume = 0;
  while (n < name.length) {
    if (p < pattern.length && (pattern[p] === "?" || (pattern[p] !== "*" && pattern[p] === name[n]))) {
      p++;
      n++;
    } else if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      resume = n;
    } else if (star >= 0) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}

export function grantCovers(grant: GrantScope, vm: VmRef): boolean {
  if (grant.site !== vm.site) return false;
  if (grant.hypervisor && grant.hypervisor !== vm.hypervisor) return false;
  if (grant.vm && grant.vm !== vm.id) return false;
  if (grant.vmPattern && !globMatches(grant.vmPattern, vm.name)) return false;
  return true;
}

export function grantActive(grant: GrantScope, now: number): boolean {
  return (grant.from == null || grant.from <= now) && (grant.until == null || now < grant.until);
}

/** The most that `role` and `grants` give on `vm` at `now`; null: the VM is not theirs to see. */
export function decide(role: Role, grants: readonly GrantScope[], vm: VmRef, now: number): AccessLevel | null {
  if (role === "auditor") return null; // auditors never open consoles, whatever a grant says
  let level = roleLevel(role);
  for (const g of grants) {
    if (level === "share") break;
    if (grantActive(g, now) && grantCovers(g, vm)) level = higher(level, g.level);
  }
  return level;
}

/**
 * When `level` (what decide() gave) stops coming from a grant, if it ends at all: undefined when the
 * role gives it, or a grant without an end does. The app shows it beside an expiring VM.
 */
export function levelEnds(role: Role, grants: readonly GrantScope[], vm: VmRef, now: number, level: AccessLevel | null): number | undefined {
  if (level === null || atLeast(roleLevel(role), level)) return undefined;
  let end = -Infinity;
  for (const g of grants) {
    if (!grantActive(g, now) || !grantCovers(g, vm) || !atLeast(g.level, level)) continue;
    if (g.until == null) return undefined;
    end = Math.max(end, g.until);
  }
  return end === -Infinity ? undefined : end;
}

/** The level a console or link needs: share links need `share`, full control `control`. */
export function needed(kind: { viewOnly: boolean; link?: boolean }): AccessLevel {
  return kind.link ? "share" : kind.viewOnly ? "view" : "control";
}

/** Who is asking, as the site needs it to decide: the role and every grant that applies to them. */
export interface Reach {
  role: Role;
  grants: GrantScope[];
}
