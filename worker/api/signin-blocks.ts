import { Hono } from "hono";
import { audit } from "../audit.ts";
import { requireRole } from "../auth/sign-in.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { registryOf } from "../registry/registry-object.ts";
import type { Reply } from "../../shared/api/types.ts";

/**
 * Sign-in throttling, for administrators: what is blocked now (`[{account, address, failures,
 * retryAfter}]`, account null for a whole address) and lifting a block early with
 * `DELETE /api/signin-blocks?account=<name>&address=<ip>` (either or both). Blocks also lift by
 * themselves as failures leave the 15-minute window.
 */
export const signInBlocks = new Hono<AppEnv>()
  .use(requireRole("admin"))
  .get("/", async (c) => c.json((await registryOf(c.env).signInBlocks()) satisfies Reply<"GET /api/signin-blocks">))
  .delete("/", async (c) => {
    const account = c.req.query("account") || null;
    const address = c.req.query("address") || null;
    if (account === null && address === null) throw new ApiError(400, "invalid_request", "Give account, address or both.");
    if ((account?.length ?? 0) > 128 || (address?.length ?? 0) > 64) throw new ApiError(400, "invalid_request", "account or address too long.");
    const cleared = await registryOf(c.env).clearSignInFailures(account, address);
    audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "signin.unblocked", actor: c.get("user").name, detail: { account, address, cleared } });
    return c.json({ cleared } satisfies Reply<"DELETE /api/signin-blocks">);
  });
