import { Hono } from "hono";
import { consolePageUrl, consoleSocketUrl } from "../../shared/urls/console.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { ConsoleTarget, validBody } from "../http/validate.ts";
import type { ConsoleOpened, ConsoleTarget as Target } from "../../shared/api/types.ts";
import { requireSite } from "./sites.ts";

export const consoles = new Hono<AppEnv>().post("/", validBody<Target>()(ConsoleTarget), async (c) => {
  const { site, hypervisor, vm } = c.req.valid("json");
  const user = c.get("user");
  // The viewer role sees consoles but never types into them: the edge enforces it.
  const result = await (await requireSite(c.env, site)).createTicket({ hypervisor, vm, user: user.name, userId: user.id, viewOnly: user.role === "viewer" });
  if (!result.ok) throw new ApiError(result.status, result.code, result.message);
  const origin = new URL(c.req.url).origin;
  return c.json(
    {
      pageUrl: consolePageUrl(origin, site, result.ticket, user.role === "viewer", { hypervisor, vm }),
      wsUrl: consoleSocketUrl(origin, site, result.ticket),
      expiresAt: new Date(result.expiresAt).toISOString(),
      viewOnly: user.role === "viewer",
    } satisfies ConsoleOpened,
    201,
  );
});
