/**
 * Least privilege (issue 19): groups, grants and access requests. The registry owns them
 * (worker/registry/grants-store.ts); what they allow is decided in one place,
 * worker/access/decide.ts. Hostile input gets a 400 that names the field and changes nothing.
 */
import { Hono } from "hono";
import { z } from "zod";
import { NAME_PATTERN } from "../../shared/protocol/messages.ts";
import type { AccessRequest, Grant, Group, NewAccessRequestBody, NewGrantBody } from "../../shared/api/types.ts";
import { requireRole } from "../auth/sign-in.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { valid, validBody } from "../http/validate.ts";
import { registryOf } from "../registry/registry-object.ts";
import { notify } from "../access/notify.ts";
import { requireSite } from "./sites.ts";
import { MAX_PENDING_REQUESTS } from "../registry/access-owner.ts";

const Level = z.enum(["view", "control", "share"], { error: "level is view, control or share" });
const GroupName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,63}$/, "use 1-64 letters, digits, spaces and . _ @ + -");
const UserName = z.string().min(1).max(256);
const Time = z.iso.datetime({ offset: true, error: "an ISO time, e.g. 2026-01-31T18:00:00Z" });
/** `*` and `?` only; no path, no regex: a glob a person can read. */
const VmPattern = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[^\u0000-\u001f]+$/, "no control characters")
  .refine((p) => p.replace(/[*?]/g, "").length > 0 || p === "*", "a pattern needs at least one literal character (or is just *)");

const NewGrant = z
  .strictObject({
    user: UserName.optional(),
    group: GroupName.optional(),
    site: z.string().regex(NAME_PATTERN, "not a site name"),
    hypervisor: z.string().regex(NAME_PATTERN, "not a hypervisor name").optional(),
    vm: z.string().min(1).max(128).optional(),
    vmPattern: VmPattern.optional(),
    level: Level,
    from: Time.optional(),
    until: Time.optional(),
  })
  .refine((g) => (g.user === undefined) !== (g.group === undefined), "give user or group (one of them)")
  .refine((g) => !(g.vm !== undefined && g.vmPattern !== undefined), "give vm or vmPattern, not both")
  .refine((g) => g.vm === undefined || g.hypervisor !== undefined, "vm needs its hypervisor")
  .refine((g) => g.from === undefined || g.until === undefined || Date.parse(g.from) < Date.parse(g.until), "until must be after from")
  .refine((g) => g.until === undefined || Date.parse(g.until) > Date.now(), "until is in the past");

const NewRequest = z.strictObject({
  site: z.string().regex(NAME_PATTERN, "not a site name"),
  hypervisor: z.string().regex(NAME_PATTERN, "not a hypervisor name"),
  vm: z.string().min(1).max(128),
  level: Level,
  minutes: z.number().int().min(1).max(7 * 24 * 60, "at most a week (10080 minutes)"),
  reason: z.string().trim().min(1, "say why").max(500),
});

const Decision = z.strictObject({ comment: z.string().max(500).optional() });
const GrantsQuery = z.object({ user: UserName.optional(), group: GroupName.optional() });
const RequestsQuery = z.object({ status: z.enum(["pending", "approved", "denied"]).optional() });

export const groups = new Hono<AppEnv>()
  .use(requireRole("admin"))
  .get("/", async (c) => c.json((await registryOf(c.env).listGroups()) satisfies Group[]))
  .post("/", validBody<{ name: string }>()(z.strictObject({ name: GroupName })), async (c) => {
    const { name } = c.req.valid("json");
    const group = await registryOf(c.env).createGroup(name, c.get("user").name);
    if (!group) throw new ApiError(409, "group_exists", `A group named ${name} already exists.`);
    return c.json(group satisfies Group, 201);
  })
  .delete("/:group", async (c) => {
    if (!(await registryOf(c.env).deleteGroup(c.req.param("group"), c.get("user").name))) throw new ApiError(404, "unknown_group", `There is no group ${c.req.param("group")}.`);
    return c.body(null, 204);
  })
  .on(["PUT", "DELETE"], "/:group/members/:username", async (c) => {
    const { group, username } = c.req.param();
    const result = await registryOf(c.env).setMember(group, username, c.req.method === "PUT", c.get("user").name);
    if (result === "unknown_group") throw new ApiError(404, "unknown_group", `There is no group ${group}.`);
    if (result === "unknown_user") throw new ApiError(400, "unknown_user", `There is no user ${username}.`);
    return c.json(result satisfies Group);
  });

export const grants = new Hono<AppEnv>()
  .post("/", requireRole("admin"), validBody<NewGrantBody>()(NewGrant), async (c) => {
    const body = c.req.valid("json");
    const registry = registryOf(c.env);
    await requireSite(c.env, body.site).catch(() => {
      throw new ApiError(400, "unknown_site", `There is no site named ${body.site}.`);
    });
    let who: { userId?: string; username?: string; group?: string };
    if (body.user !== undefined) {
      const user = await registry.userRef(body.user);
      if (!user) throw new ApiError(400, "unknown_user", `There is no user ${body.user}.`);
      who = { userId: user.id, username: user.name };
    } else {
      const group = await registry.describeGroup(body.group!);
      if (!group) throw new ApiError(400, "unknown_group", `There is no group ${body.group}.`);
      who = { group: group.name };
    }
    const grant = await registry.createGrant({
      ...who,
      site: body.site,
      ...(body.hypervisor !== undefined ? { hypervisor: body.hypervisor } : {}),
      ...(body.vm !== undefined ? { vm: body.vm } : {}),
      ...(body.vmPattern !== undefined ? { vmPattern: body.vmPattern } : {}),
      level: body.level,
      ...(body.from !== undefined ? { from: Date.parse(body.from) } : {}),
      ...(body.until !== undefined ? { until: Date.parse(body.until) } : {}),
      createdBy: c.get("user").name,
    });
    return c.json(grant satisfies Grant, 201);
  })
  .get("/", valid("query", GrantsQuery), async (c) => {
    const user = c.get("user");
    const registry = registryOf(c.env);
    if (user.role !== "admin") return c.json((await registry.grantsFor(user.id)) satisfies Grant[]);
    const q = c.req.valid("query");
    if (q.user !== undefined) {
      const ref = await registry.userRef(q.user);
      return c.json((ref ? await registry.listGrants({ userId: ref.id }) : []) satisfies Grant[]);
    }
    return c.json((await registry.listGrants(q.group !== undefined ? { group: q.group } : {})) satisfies Grant[]);
  })
  .delete("/:id", requireRole("admin"), async (c) => {
    const gone = await registryOf(c.env).deleteGrant(c.req.param("id"), c.get("user").name);
    if (!gone) throw new ApiError(404, "unknown_grant", `There is no grant ${c.req.param("id")}.`);
    return c.body(null, 204);
  });

export const accessRequests = new Hono<AppEnv>()
  .post("/", requireRole("admin", "operator", "viewer", "member"), validBody<NewAccessRequestBody>()(NewRequest), async (c) => {
    const body = c.req.valid("json");
    const user = c.get("user");
    await requireSite(c.env, body.site);
    const request = await registryOf(c.env).createAccessRequest({ userId: user.id, username: user.name, ...body });
    if (!request) throw new ApiError(429, "too_many_requests", `You have ${MAX_PENDING_REQUESTS} access requests waiting already: wait for an answer, or ask an administrator.`);
    notify(c.env, (p) => c.executionCtx.waitUntil(p), `${user.name} asks for ${body.level} on ${body.vm} (${body.site}/${body.hypervisor}) for ${body.minutes} min: ${body.reason}`);
    return c.json(request satisfies AccessRequest, 201);
  })
  .get("/", valid("query", RequestsQuery), async (c) => {
    const user = c.get("user");
    const { status } = c.req.valid("query");
    const filter = { ...(user.role === "admin" ? {} : { userId: user.id }), ...(status ? { status } : {}) };
    return c.json((await registryOf(c.env).listAccessRequests(filter)) satisfies AccessRequest[]);
  })
  .post("/:id/:decision{approve|deny}", requireRole("admin"), validBody<{ comment?: string }>()(Decision), async (c) => {
    const { id, decision } = c.req.param();
    const { comment } = c.req.valid("json");
    const user = c.get("user");
    const result = await registryOf(c.env).decideAccessRequest(id, decision === "approve", { id: user.id, name: user.name }, comment);
    if (!result.ok) throw new ApiError(result.status, result.code, result.message);
    const r = result.request;
    notify(c.env, (p) => c.executionCtx.waitUntil(p), `${user.name} ${r.status} ${r.user}'s request for ${r.level} on ${r.vm} (${r.site})${comment ? `: ${comment}` : ""}`);
    return c.json(r satisfies AccessRequest);
  });
