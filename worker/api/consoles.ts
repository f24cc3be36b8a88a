import { Hono } from "hono";
import { consolePageUrl, consoleSocketUrl } from "../../shared/urls/console.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { ConsoleTarget, validBody } from "../http/validate.ts";
import type { ConsoleOpened, ConsoleTarget as Target } from "../../shared/api/types.ts";
import { requireSite } from "./sites.ts";
import { reachOf } from "../access/reach.ts";

export const consoles = new Hono<AppEnv>().post("/", validBody<Target>()(ConsoleTarget), async (c) => {
  const { site, hypervisor, vm } = c.req.valid("json");
  const user = c.get("user");
  if (user.role === "auditor") throw new ApiError(403, "forbidden", "Auditors read the audit trail and live sessions; they open no consoles.");
  // The site decides (worker/access/decide.ts): view-only where the role and grants give no more.
  const result = await (await requireSite(c.env, site)).createTicket({ hypervisor, vm, user: user.name, userId: user.id, reach: await reachOf(c.env, user) });
  if (!result.ok) throw new ApiError(result.status, result.code, result.message);
  const origin = new URL(c.req.url).origin;
  return c.json(
    {
      pageUrl: consolePageUrl(origin, site, result.ticket, result.viewOnly, { hypervisor, vm }),
      wsUrl: consoleSocketUrl(origin, site, result.ticket),
      expiresAt: new Date(result.expiresAt).toISOString(),
      viewOnly: result.viewOnly,
    } satisfies ConsoleOpened,
    201,
  );
});
