import { Hono } from "hono";
import { z } from "zod";
import { NAME_PATTERN } from "../../shared/protocol/messages.ts";
import { consolePageUrl, consoleSocketUrl } from "../../shared/urls/console.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { readJson } from "../http/validate.ts";
import { requireSite } from "./sites.ts";

const NewConsole = z.object({
  site: z.string().regex(NAME_PATTERN, "not a site name"),
  hypervisor: z.string().regex(NAME_PATTERN, "not a hypervisor name"),
  vm: z.string().min(1).max(128),
});

export const consoles = new Hono<AppEnv>().post("/", async (c) => {
  const { site, hypervisor, vm } = await readJson(c, NewConsole);
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
    },
    201,
  );
});
