/**
 * Live consoles: who or which link is watching what, and "End session". Admins see and end all;
 * others their own consoles and those opened through their share links.
 */
import { Hono } from "hono";
import { NAME_PATTERN } from "../../shared/protocol/messages.ts";
import type { AppEnv, User } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { registryOf } from "../registry/registry-object.ts";
import type { SessionInfo } from "../site/site-api.ts";
import { siteOf } from "./sites.ts";

function visibleTo(user: User, s: SessionInfo): boolean {
  if (user.role === "admin") return true;
  if (s.linkId === undefined) return s.userId === user.id;
  // Links made before accounts had ids are matched by name.
  return s.linkCreatedById === null ? s.linkCreatedBy === user.name : s.linkCreatedById === user.id;
}

export const sessions = new Hono<AppEnv>()
  .get("/", async (c) => {
    const user = c.get("user");
    const names = await registryOf(c.env).listSites();
    const lists = await Promise.all(names.map((n) => siteOf(c.env, n).listSessions()));
    const list = lists.flat().filter((s) => visibleTo(user, s)).sort((a, b) => b.openedAt.localeCompare(a.openedAt));
    c.header("Cache-Control", "no-store");
    return c.json(list);
  })
  .delete("/:id", async (c) => {
    const user = c.get("user");
    const id = c.req.param("id");
    const m = /^([a-z0-9][a-z0-9_-]{0,62})\.([1-9][0-9]{0,9})$/.exec(id);
    const notFound = new ApiError(404, "unknown_session", `There is no live console ${id} of yours.`);
    if (!m || !NAME_PATTERN.test(m[1]!) || !(await registryOf(c.env).hasSite(m[1]!))) throw notFound;
    const ended = await siteOf(c.env, m[1]!).endSession(Number(m[2]), user.name, user.role === "admin" ? null : { id: user.id, name: user.name });
    if (!ended) throw notFound;
    return c.body(null, 204);
  });
