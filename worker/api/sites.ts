import { Hono } from "hono";
import { z } from "zod";
import { NAME_PATTERN } from "../../shared/protocol/messages.ts";
import { audit } from "../audit.ts";
import { requireRole } from "../auth/sign-in.ts";
import { randomToken, sha256Hex } from "../auth/secrets.ts";
import type { AppEnv, Env } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { SiteName, validBody } from "../http/validate.ts";
import { RECORDING_POLICIES, type Body, type Reply, type Site, type SiteCreated, type SiteVm, type TokenRotated } from "../../shared/api/types.ts";
import { registryOf } from "../registry/registry-object.ts";
import { reachOf } from "../access/reach.ts";

const NewSite = z.object({ name: SiteName });
const SiteChange = z.strictObject({ recording: z.enum(RECORDING_POLICIES).optional(), recordInput: z.boolean().optional() });

/** Connector tokens name their site, so /connect can route before any lookup: `pht1.<site>.<secret>`. */
export function parseConnectorToken(token: string): string | null {
  const m = /^pht1\.([a-z0-9][a-z0-9_-]{0,62})\.[A-Za-z0-9_-]{43}$/.exec(token);
  return m ? m[1]! : null;
}

export function siteOf(env: Env, site: string) {
  return env.SITE.get(env.SITE.idFromName(site));
}

/** 404 unless the site exists, so unknown names never create objects. */
export async function requireSite(env: Env, site: string) {
  if (!NAME_PATTERN.test(site) || !(await registryOf(env).hasSite(site))) {
    throw new ApiError(404, "unknown_site", `There is no site named ${JSON.stringify(site)}.`);
  }
  return siteOf(env, site);
}

/**
 * The contract's `version` is the connector's version as `--version` prints it (`0.3.0`); the
 * site object knows HELLO's software string (`porthole-connector/0.3.0`), kept as `software`.
 */
function withVersion<T extends { version: string | null }>(connector: T): Omit<T, "version"> & { version: string | null; software: string | null } {
  const software = connector.version;
  return { ...connector, software, version: software === null ? null : (/\/([^/\s]+)$/.exec(software)?.[1] ?? software) };
}

export const sites = new Hono<AppEnv>()
  .post("/", requireRole("admin"), validBody<Body<"POST /api/sites">>()(NewSite), async (c) => {
    const { name } = c.req.valid("json");
    const registry = registryOf(c.env);
    if (!(await registry.createSite(name))) {
      throw new ApiError(409, "site_exists", `A site named ${name} already exists.`);
    }
    const connectorToken = `pht1.${name}.${randomToken()}`;
    try {
      await siteOf(c.env, name).initialize(name, await sha256Hex(connectorToken));
    } catch (err) {
      await registry.deleteSite(name);
      throw err;
    }
    audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "site.created", actor: c.get("user").name, site: name });
    return c.json({ name, connectorToken } satisfies SiteCreated, 201);
  })
  .get("/", async (c) => {
    const user = c.get("user");
    let names = await registryOf(c.env).listSites();
    // Members see only the sites their grants name (least privilege: not even that others exist);
    // every other role reaches every site by its role, and auditors oversee them all.
    if (user.role === "member") {
      const mine = new Set((await reachOf(c.env, user)).grants.map((g) => g.site));
      names = names.filter((name) => mine.has(name));
    }
    // Each connector's host, version, address and time joined: an impostor with a leaked token stands out.
    // Where connectors connect from is for administrators only.
    const admin = c.get("user").role === "admin";
    const described = await Promise.all(
      names.map(async (name) => {
        const site = siteOf(c.env, name);
        const [described, policy] = await Promise.all([site.describeConnectors(), site.recordingPolicy()]);
        const connectors = described.map(withVersion);
        return { name, ...policy, connectors: admin ? connectors : connectors.map(({ address: _, ...rest }) => rest) };
      }),
    );
    return c.json(described satisfies Site[]);
  })
  /** Which of the site's consoles are recorded (docs/recording.md). */
  .patch("/:site", requireRole("admin"), validBody<Body<"PATCH /api/sites/:site">>()(SiteChange), async (c) => {
    const name = c.req.param("site");
    const site = await requireSite(c.env, name);
    const now = await site.setRecordingPolicy(c.req.valid("json"), c.get("user").name);
    return c.json({ name, ...now } satisfies Reply<"PATCH /api/sites/:site">);
  })
  /** A new connector token, shown once; connectors that joined with the old one are dropped at once. */
  .post("/:site/token", requireRole("admin"), async (c) => {
    const name = c.req.param("site");
    const site = await requireSite(c.env, name);
    const connectorToken = `pht1.${name}.${randomToken()}`;
    const dropped = await site.rotateConnectorToken(await sha256Hex(connectorToken), c.get("user").name);
    return c.json({ connectorToken, connectorsDropped: dropped } satisfies TokenRotated);
  })
  /** The site, its links, tickets and connectors are gone; its consoles close. */
  .delete("/:site", requireRole("admin"), async (c) => {
    const name = c.req.param("site");
    const site = await requireSite(c.env, name);
    // Unlisted first: from here on no upgrade or API call reaches the object.
    await registryOf(c.env).deleteSite(name);
    await site.destroy(c.get("user").name);
    return c.body(null, 204);
  })
  .get("/:site/vms", async (c) => {
    const site = await requireSite(c.env, c.req.param("site"));
    const user = c.get("user");
    // Only what the caller may reach, each with what they may do there (worker/access/decide.ts).
    return c.json((await site.visibleVms(user.id, await reachOf(c.env, user))) satisfies SiteVm[]);
  });
