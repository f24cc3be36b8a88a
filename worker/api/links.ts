import { type Context, Hono } from "hono";
import { z } from "zod";
import { linkPageUrl, linkSocketUrl } from "../../shared/urls/console.ts";
import { requireRole } from "../auth/sign-in.ts";
import type { AppEnv, Env } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { ConsoleTarget, validBody } from "../http/validate.ts";
import type { Link, LinkCreated, LinkJoinAnswered, NewLinkBody } from "../../shared/api/types.ts";
import { registryOf } from "../registry/registry-object.ts";
import type { Owner } from "../site/site-object.ts";
import { requireSite, siteOf } from "./sites.ts";
import { reachOf } from "../access/reach.ts";
import { NOTE_MAX } from "../site/share-links.ts";
import { limit } from "../site/upgrades.ts";

export const DEFAULT_LINK_TTL_SECONDS = 15 * 60;
const DEFAULT_MAX_TTL_SECONDS = 24 * 3600;

function maxTtl(env: Env): number {
  const n = Number(env.LINK_MAX_TTL_SECONDS);
  return Number.isInteger(n) && n > 0 ? n : DEFAULT_MAX_TTL_SECONDS;
}

const NewLink = ConsoleTarget.extend({
  ttlSeconds: z.number().int().positive().optional(),
  viewOnly: z.boolean().optional(),
  pin: z.boolean().optional(),
  approval: z.boolean().optional(),
  startsAt: z.string().datetime({ offset: true, message: "an ISO time, e.g. 2030-01-01T09:00:00Z" }).optional(),
  maxUses: z.number().int().min(1, "at least 1 (1: a one-time link)").max(1000).optional(),
  maxViewers: z.number().int().min(1).optional(),
  note: z
    .string()
    .max(NOTE_MAX, `at most ${NOTE_MAX} characters`)
    // Shown in lists and the audit: one line of text, no control characters.
    .regex(/^[^\u0000-\u001f\u007f]*$/, "no control characters or line breaks")
    .optional(),
});

/** Allowed clock skew for a start time "now" from a client. */
const START_SLACK_MS = 60_000;

/** Links by owner (null: all), newest first; ownership is the creator's id, never the name. */
async function allLinks(c: Context<AppEnv>, owner: Owner | null): Promise<Link[]> {
  const names = await registryOf(c.env).listSites();
  const lists = await Promise.all(names.map((n) => siteOf(c.env, n).linksOf(owner)));
  return lists
    .flat()
    .map(({ createdById: _, ...info }) => info)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/**
 * A link's waiting viewer let in or turned away (worker/site/link-joins.ts): by anyone in control
 * of that VM's console, not only the link's creator, so the link is found among all links and
 * the site object decides with the person's access.
 */
async function answerJoin(c: Context<AppEnv>, allow: boolean): Promise<Response> {
  const user = c.get("user");
  const id = c.req.param("id") ?? "";
  const join = c.req.param("join") ?? "";
  // Only which site holds the link: a cheap question to each, and one that fails does not stop the answer.
  const names = await registryOf(c.env).listSites();
  const holds = await Promise.allSettled(names.map((n) => siteOf(c.env, n).hasLink(id)));
  const site = names.find((_, i) => holds[i]!.status === "fulfilled" && (holds[i] as PromiseFulfilledResult<boolean>).value);
  if (!site) throw new ApiError(404, "unknown_join", `There is no request ${join} to join link ${id}.`);
  const r = await siteOf(c.env, site).answerLinkJoin({ link: id, join, allow, user: user.name, userId: user.id, reach: await reachOf(c.env, user) });
  if (!r.ok) throw new ApiError(r.status, r.code, r.message);
  return c.json({ id: r.id, name: r.name, state: r.state } satisfies LinkJoinAnswered);
}

/**
 * Share links: whoever may share that VM (the `share` level: operators and admins by role, others
 * by a grant) makes them; people see and revoke their own, admins all.
 */
export const links = new Hono<AppEnv>()
  .post("/", requireRole("admin", "operator", "viewer", "member"), validBody<NewLinkBody>()(NewLink), async (c) => {
    const body = c.req.valid("json");
    const ttlSeconds = body.ttlSeconds ?? DEFAULT_LINK_TTL_SECONDS;
    if (ttlSeconds > maxTtl(c.env)) {
      throw new ApiError(400, "invalid_request", `ttlSeconds: at most ${maxTtl(c.env)} (LINK_MAX_TTL_SECONDS).`);
    }
    const viewOnly = body.viewOnly ?? true;
    const expiresAt = Date.now() + ttlSeconds * 1000;
    const startsAt = body.startsAt === undefined ? null : Date.parse(body.startsAt);
    if (startsAt !== null && startsAt < Date.now() - START_SLACK_MS) throw new ApiError(400, "invalid_request", "startsAt: in the past.");
    if (startsAt !== null && startsAt >= expiresAt) throw new ApiError(400, "invalid_request", "startsAt: at or after the link's expiry (ttlSeconds counts from now).");
    const maxPerLink = limit(c.env.MAX_CONSOLES_PER_LINK, 10);
    if (body.maxViewers !== undefined && body.maxViewers > maxPerLink) {
      throw new ApiError(400, "invalid_request", `maxViewers: at most ${maxPerLink} (MAX_CONSOLES_PER_LINK).`);
    }
    const note = body.note?.trim() || null;
    const user = c.get("user");
    const created = await (await requireSite(c.env, body.site)).createLink({
      hypervisor: body.hypervisor,
      vm: body.vm,
      viewOnly,
      ttlMs: ttlSeconds * 1000,
      user: user.name,
      userId: user.id,
      reach: await reachOf(c.env, user),
      pin: body.pin === true,
      approval: body.approval === true,
      startsAt,
      maxUses: body.maxUses ?? null,
      maxViewers: body.maxViewers ?? null,
      note,
    });
    if (!created.ok) throw new ApiError(created.status, created.code, created.message);
    const origin = new URL(c.req.url).origin;
    return c.json(
      {
        id: created.id,
        url: linkPageUrl(origin, body.site, created.secret),
        wsUrl: linkSocketUrl(origin, body.site, created.secret),
        expiresAt: new Date(created.expiresAt).toISOString(),
        viewOnly,
        ...(created.pin ? { pin: created.pin } : {}),
        startsAt: startsAt === null ? null : new Date(startsAt).toISOString(),
        maxUses: body.maxUses ?? null,
        maxViewers: body.maxViewers ?? maxPerLink,
        note,
      } satisfies LinkCreated,
      201,
    );
  })
  .get("/", async (c) => {
    const user = c.get("user");
    return c.json(await allLinks(c, user.role === "admin" ? null : { id: user.id, name: user.name }));
  })
  .post("/:id/joins/:join/allow", (c) => answerJoin(c, true))
  .post("/:id/joins/:join/deny", (c) => answerJoin(c, false))
  .delete("/:id", async (c) => {
    const user = c.get("user");
    const id = c.req.param("id");
    const owner = user.role === "admin" ? null : { id: user.id, name: user.name };
    const link = (await allLinks(c, owner)).find((l) => l.id === id);
    if (!link) throw new ApiError(404, "unknown_link", `There is no link ${id} of yours.`);
    const result = await siteOf(c.env, link.site).revokeLinkOf(id, user.name, owner);
    if (!result.ok && result.status === 410) throw new ApiError(410, "link_ended", `Link ${id} has already ${link.state === "revoked" ? "been revoked" : "expired"}.`);
    if (!result.ok) throw new ApiError(404, "unknown_link", `There is no link ${id} of yours.`);
    return c.body(null, 204);
  });
