/**
 * What each user may reach, as far as this site has been told (issue 19). The registry owns roles
 * and grants; a request brings what it read there. When the registry tells the site of a change
 * (`reviewUserAccess`), the site keeps that newer answer here, so a request that read the registry
 * just before a grant was removed cannot get a ticket or a link just after. Table `user_reach`:
 * site migration 4. Every decision itself is `decide()` (worker/access/decide.ts).
 */
import { type Reach, type VmRef, decide } from "../access/decide.ts";
import type { VersionedReach } from "../access/review.ts";
import type { AccessLevel } from "../../shared/api/types.ts";
import type { SiteVm } from "./site-api.ts";

export class ReachBook {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  /** Keeps the newest reach the registry told of (by version). */
  remember(userId: string, reach: VersionedReach): void {
    this.sql.exec(
      "INSERT INTO user_reach (user_id, version, json) VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, json = excluded.json WHERE excluded.version >= user_reach.version",
      userId,
      reach.version,
      JSON.stringify({ role: reach.role, grants: reach.grants }),
    );
  }

  /** The request's reach, unless the registry has since told this site something newer. */
  current(userId: string | undefined, reach: VersionedReach): Reach {
    if (!userId) return reach;
    const row = this.sql.exec<{ version: number; json: string }>("SELECT version, json FROM user_reach WHERE user_id = ?", userId).toArray()[0];
    // Only a strictly newer answer wins: at an equal version the request's role, read afresh from
    // the registry, is at least as new as the remembered one. (Admins' and auditors' requests carry
    // version 0: a remembered review of them wins, which can only be one made after their last
    // role change, since every role change is a new version told to every site.)
    return row && row.version > reach.version ? (JSON.parse(row.json) as Reach) : reach;
  }
}

/** A VM as the decision sees it: its name from the inventory (patterns match names), else its id. */
export function vmRef(site: string, vms: SiteVm[], hypervisor: string, vm: string): VmRef {
  const found = vms.find((v) => v.hypervisor === hypervisor && v.id === vm);
  return { site, hypervisor, id: vm, name: found?.name ?? vm };
}

export function levelOn(reach: Reach, site: string, vms: SiteVm[], hypervisor: string, vm: string, now = Date.now()): AccessLevel | null {
  return decide(reach.role, reach.grants, vmRef(site, vms, hypervisor, vm), now);
}
