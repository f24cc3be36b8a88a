/**
 * The caller's reach for a request: their role (read on every request) and every grant that
 * applies to them, from the registry, with the access version the site compares against.
 */
import type { Env, User } from "../env.ts";
import { registryOf } from "../registry/registry-object.ts";
import type { VersionedReach } from "./review.ts";

export async function reachOf(env: Env, user: User): Promise<VersionedReach> {
  // Admins, operators and viewers need no grants for their role's level, but grants may give more
  // (a viewer with `control` on one VM); auditors never get a console, so their grants are not read.
  if (user.role === "admin" || user.role === "auditor") return { role: user.role, grants: [], version: 0 };
  const { grants, version } = await registryOf(env).reachOf(user.id);
  return { role: user.role, grants, version };
}
