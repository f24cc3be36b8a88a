import { Hono } from "hono";
import { z } from "zod";
import { audit } from "../audit.ts";
import { randomToken, sha256Hex } from "../auth/secrets.ts";
import { API_TOKEN_PREFIX } from "../auth/session.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { valid } from "../http/validate.ts";
import { registryOf } from "../registry/registry-object.ts";

const NewToken = z.object({ name: z.string().min(1).max(128) });

/** API tokens act as the user who made them, with that user's current role. */
export const tokens = new Hono<AppEnv>()
  .post("/", valid("json", NewToken), async (c) => {
    const { name } = c.req.valid("json");
    const user = c.get("user");
    const id = randomToken(9);
    const token = `${API_TOKEN_PREFIX}${randomToken()}`;
    await registryOf(c.env).createToken(id, await sha256Hex(token), name, user.name, user.id);
    audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "token.created", actor: user.name, detail: { id, name } });
    return c.json({ id, token }, 201);
  })
  .get("/", async (c) => {
    const user = c.get("user");
    return c.json(await registryOf(c.env).listTokens(user.role === "admin" ? null : user.id));
  })
  .delete("/:id", async (c) => {
    const user = c.get("user");
    const id = c.req.param("id");
    const gone = await registryOf(c.env).deleteToken(id, user.role === "admin" ? null : user.id);
    if (!gone) throw new ApiError(404, "unknown_token", `There is no token ${id} of yours.`);
    audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "token.revoked", actor: user.name, detail: { id, name: gone.name, owner: gone.user } });
    return c.body(null, 204);
  });
