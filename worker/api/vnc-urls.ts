import { type Context, Hono } from "hono";
import { consolePageUrl } from "../../shared/urls/console.ts";
import { currentUser } from "../auth/sign-in.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { ConsoleTarget, validBody } from "../http/validate.ts";
import type { ConsoleTarget as Target, VncUrls } from "../../shared/api/types.ts";
import { requireSite } from "./sites.ts";
import { reachOf } from "../access/reach.ts";

/** A stable Porthole address of a VM's console: opening it signs in if needed, then shows the console. */
export function edgeConsoleUrl(origin: string, site: string, hypervisor: string, vm: string): string {
  return `${origin}/open?${new URLSearchParams({ site, hypervisor, vm })}`;
}

/**
 * The seed's URLs for a VM: `edge` (works from anywhere, through Porthole) and, for CloudTower VMs,
 * `direct` (to the cluster) and `proxied` (through the tower) for people on the LAN. The LAN URLs
 * give full control of the console, so only those with the control level on that VM get them
 * (the site object asks decide(), as for a console).
 */
export const vncUrls = new Hono<AppEnv>().post("/", validBody<Target>()(ConsoleTarget), async (c) => {
  const { site, hypervisor, vm } = c.req.valid("json");
  const user = c.get("user");
  const result = await (await requireSite(c.env, site)).vncUrls(hypervisor, vm, { userId: user.id, reach: await reachOf(c.env, user) });
  if (!result.ok) throw new ApiError(result.status, result.code, result.message);
  const edge = edgeConsoleUrl(new URL(c.req.url).origin, site, hypervisor, vm);
  return c.json({
    edge,
    ...(result.direct ? { direct: result.direct } : {}),
    ...(result.proxied ? { proxied: result.proxied } : {}),
  } satisfies VncUrls);
});

/** GET /open?site&hypervisor&vm: a fresh console for the signed-in user, or the sign-in page first. */
export async function openConsolePage(c: Context<AppEnv>): Promise<Response> {
  const parsed = ConsoleTarget.safeParse(Object.fromEntries(new URL(c.req.url).searchParams));
  if (!parsed.success) throw new ApiError(400, "invalid_request", "This console link is incomplete.");
  const user = await currentUser(c);
  if (!user) return c.redirect(`/?next=${encodeURIComponent(`${c.req.path}?${new URL(c.req.url).searchParams}`)}`, 302);
  const { site, hypervisor, vm } = parsed.data;
  if (user.role === "auditor") throw new ApiError(403, "forbidden", "Auditors read the audit trail and live sessions; they open no consoles.");
  const result = await (await requireSite(c.env, site)).createTicket({ hypervisor, vm, user: user.name, userId: user.id, reach: await reachOf(c.env, user) });
  if (!result.ok) throw new ApiError(result.status, result.code, result.message);
  return c.redirect(consolePageUrl(new URL(c.req.url).origin, site, result.ticket, result.viewOnly, { hypervisor, vm }), 302);
}
