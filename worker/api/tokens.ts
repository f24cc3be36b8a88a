import { Hono } from "hono";
import { z } from "zod";
import { audit } from "../audit.ts";
import { randomToken, sha256Hex } from "../auth/secrets.ts";
import { API_TOKEN_PREFIX } from "../auth/sign-in.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { validBody } from "../http/validate.ts";
import type { NewTokenBody, Token, TokenCreated } from "../../shared/api/types.ts";
import { registryOf } from "../registry/registry-object.ts";

/** The longest expiry a token may be given; none given: it lasts until revoked. */
export const TOKEN_MAX_TTL_DAYS = 365;

const NewToken = z.object({
  name: z.string().min(1).max(128),
  ttlDays: z
    .number({ error: "ttlDays is a whole number of days" })
    .int("ttlDays is a whole number of days")
    .min(1, "ttlDays is at least 1")
    .max(TOKEN_MAX_TTL_DAYS, `ttlDays is at most ${TOKEN_MAX_TTL_DAYS}`)
    .optional(),
});

/**
 * API tokens act as the user who made them, with that user's current role. `ttlDays` makes one
 * expire; the list shows `expiresAt` and `lastUsedAt` (to the minute).
 */
export const tokens = new Hono<AppEnv>()
  .post("/", validBody<NewTokenBody>()(NewToken), async (c) => {
    const { name, ttlDays } = c.req.valid("json");
    const user = c.get("user");
    const id = randomToken(9);
    const token = `${API_TOKEN_PREFIX}${randomToken()}`;
    const expiresAt = ttlDays === undefined ? null : Date.now() + ttlDays * 86400_000;
    await registryOf(c.env).createToken(id, await sha256Hex(token), name, user.name, user.id, expiresAt);
    const expires = expiresAt === null ? null : new Date(expiresAt).toISOString();
    audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "token.created", actor: user.name, detail: { id, name, expiresAt: expires } });
    return c.json({ id, token, expiresAt: expires } satisfies TokenCreated, 201);
  })
  .get("/", async (c) => {
    const user = c.get("user");
    return c.json((await registryOf(c.env).listTokens(user.role === "admin" ? null : user.id)) satisfies Token[]);
  })
  .delete("/:id", async (c) => {
    const user = c.get("user");
    const id = c.req.param("id");
    const gone = await registryOf(c.env).deleteToken(id, user.role === "admin" ? null : user.id);
    if (!gone) throw new ApiError(404, "unknown_token", `There is no token ${id} of yours.`);
    audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "token.revoked", actor: user.name, detail: { id, name: gone.name, owner: gone.user } });
    return c.body(null, 204);
  });
