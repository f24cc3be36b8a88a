import { Hono } from "hono";
import { z } from "zod";
import { audit } from "../audit.ts";
import { hashPassword } from "../auth/passwords.ts";
import { requireRole } from "../auth/session.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { readJson } from "../http/validate.ts";
import { registryOf } from "../registry/registry-object.ts";

const NewUser = z.object({
  username: z.string().regex(/^[A-Za-z0-9._@+-]{1,128}$/, "use letters, digits and . _ @ + - (an email address works)"),
  password: z.string().min(12, "use at least 12 characters").max(1024),
  role: z.enum(["admin", "operator", "viewer"], { error: "role is admin, operator or viewer" }),
});

export const users = new Hono<AppEnv>()
  .use(requireRole("admin"))
  .post("/", async (c) => {
    const { username, password, role } = await readJson(c, NewUser);
    if (username === c.env.ADMIN_USERNAME || !(await registryOf(c.env).createUser(username, role, await hashPassword(password)))) {
      throw new ApiError(409, "user_exists", `A user named ${username} already exists.`);
    }
    audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "user.created", actor: c.get("user").name, detail: { username, role } });
    return c.json({ username, role }, 201);
  })
  .get("/", async (c) => {
    const list = await registryOf(c.env).listUsers();
    const builtIn = c.env.ADMIN_USERNAME ? [{ username: c.env.ADMIN_USERNAME, role: "admin", builtIn: true }] : [];
    return c.json([...builtIn, ...list]);
  })
  .delete("/:username", async (c) => {
    const username = c.req.param("username");
    if (username === c.env.ADMIN_USERNAME) {
      throw new ApiError(409, "built_in_user", "This administrator comes from the ADMIN_USERNAME secret; change the secret instead.");
    }
    if (!(await registryOf(c.env).deleteUser(username))) throw new ApiError(404, "unknown_user", `There is no user named ${username}.`);
    audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "user.deleted", actor: c.get("user").name, detail: { username } });
    return c.body(null, 204);
  });
