/**
 * Live consoles: who or which link is watching what, and "End session". Admins see and end all;
 * others their own consoles and those opened through their share links.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv, User } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { valid } from "../http/validate.ts";
import { registryOf } from "../registry/registry-object.ts";
import type { SessionInfo } from "../site/site-api.ts";
import type { LiveConsole } from "../../shared/api/types.ts";
import { siteOf } from "./sites.ts";

/** `<site>.<stream>`, as GET /api/sessions lists it. */
const SessionId = z.object({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}\.[1-9][0-9]{0,9}$/, "not a live console's id (site.stream)")
    .transform((id) => ({ site: id.slice(0, id.lastIndexOf(".")), stream: Number(id.slice(id.lastIndexOf(".") + 1)) })),
});

function visibleTo(user: User, s: SessionInfo): boolean {
  // Auditors watch every live console (they end none: DELETE below is for admins and owners).
  if (user.role === "admin" || user.role === "auditor") return true;
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
    return c.json(list satisfies LiveConsole[]);
  })
  .delete("/:id", valid("param", SessionId), async (c) => {
    const user = c.get("user");
    const { site, stream } = c.req.valid("param").id;
    const notFound = new ApiError(404, "unknown_session", `There is no live console ${site}.${stream} of yours.`);
    if (!(await registryOf(c.env).hasSite(site))) throw notFound;
    const ended = await siteOf(c.env, site).endSession(stream, user.name, user.role === "admin" ? null : { id: user.id, name: user.name });
    if (!ended.ok) throw notFound;
    return c.body(null, 204);
  });
