import { Hono } from "hono";
import { z } from "zod";
import { requireRole } from "../auth/sign-in.ts";
import type { AppEnv } from "../env.ts";
import { valid } from "../http/validate.ts";
import type { AuditRow } from "../../shared/api/types.ts";
import { registryOf } from "../registry/registry-object.ts";

const Query = z.object({
  type: z.string().max(64).optional(),
  actor: z.string().max(256).optional(),
  site: z.string().max(64).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * GET /api/audit: newest first. Filters: type (e.g. `console` or `console.closed`), actor, site,
 * since / until (ISO times); paging: `limit` (≤ 1000) and `before` (the `id` of the last row seen).
 */
export const auditApi = new Hono<AppEnv>().use(requireRole("admin", "auditor")).get("/", valid("query", Query), async (c) => {
  const q = c.req.valid("query");
  // (The RPC stub's type cannot express `unknown` details; the rows are AuditRow as stored.)
  const rows = (await registryOf(c.env).auditQuery({
    type: q.type,
    actor: q.actor,
    site: q.site,
    since: q.since ? Date.parse(q.since) : undefined,
    until: q.until ? Date.parse(q.until) : undefined,
    before: q.before,
    limit: q.limit,
  })) as unknown as AuditRow[];
  const next = rows.length === q.limit ? rows.at(-1)!.id : null;
  if (next !== null) {
    const url = new URL(c.req.url);
    url.searchParams.set("before", String(next));
    c.header("Link", `<${url.pathname}${url.search}>; rel="next"`);
  }
  return c.json(rows satisfies AuditRow[]);
});
