import { Hono } from "hono";
import { z } from "zod";
import { audit } from "../audit.ts";
import { hashPassword } from "../auth/passwords.ts";
import { requireRole } from "../auth/session.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { valid } from "../http/validate.ts";
import { registryOf } from "../registry/registry-object.ts";
import { siteOf } from "./sites.ts";

const Password = z.string().min(12, "use at least 12 characters").max(1024);
const RoleField = z.enum(["admin", "operator", "viewer"], { error: "role is admin, operator or viewer" });

const NewUser = z.object({
  username: z.string().regex(/^[A-Za-z0-9._@+-]{1,128}$/, "use letters, digits and . _ @ + - (an email address works)"),
  password: Password,
  role: RoleField,
});

const UserChange = z
  .strictObject({ role: RoleField.optional(), password: Password.optional(), disabled: z.boolean().optional() })
  .refine((p) => p.role !== undefined || p.password !== undefined || p.disabled !== undefined, "give role, password or disabled");

function builtInRefused(): never {
  throw new ApiError(409, "built_in_user", "This administrator comes from the ADMIN_USERNAME secret; change the secret instead.");
}

export const users = new Hono<AppEnv>()
  .use(requireRole("admin"))
  .post("/", valid("json", NewUser), async (c) => {
    const { username, password, role } = c.req.valid("json");
    if (username === c.env.ADMIN_USERNAME || !(await registryOf(c.env).createUser(username, role, await hashPassword(password)))) {
      throw new ApiError(409, "user_exists", `A user named ${username} already exists.`);
    }
    audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "user.created", actor: c.get("user").name, detail: { username, role } });
    return c.json({ username, role }, 201);
  })
  .get("/", async (c) => {
    const list = await registryOf(c.env).listUsers();
    const builtIn = c.env.ADMIN_USERNAME ? [{ username: c.env.ADMIN_USERNAME, role: "admin", builtIn: true }] : [];
    return c.json([...builtIn, ...list.map(({ id: _, ...u }) => u)]);
  })
  /**
   * Role, password, disabled. Takes effect at once: a lowered role applies to the next request of
   * every session and token; disabling ends sessions, tokens, consoles, tickets and links; lowering
   * to viewer ends full-control consoles and tickets and the user's links; a new password ends
   * sessions (tokens stay).
   */
  .patch("/:username", valid("json", UserChange), async (c) => {
    const username = c.req.param("username");
    if (username === c.env.ADMIN_USERNAME) builtInRefused();
    const change = c.req.valid("json");
    const actor = c.get("user");
    if (actor.name === username && (change.disabled === true || (change.role !== undefined && change.role !== "admin"))) {
      throw new ApiError(409, "own_account", "You cannot disable or demote your own account; ask another administrator.");
    }
    const registry = registryOf(c.env);
    const changed = await registry.updateUser(
      username,
      {
        ...(change.role !== undefined ? { role: change.role } : {}),
        ...(change.password !== undefined ? { passwordHash: await hashPassword(change.password) } : {}),
        ...(change.disabled !== undefined ? { disabled: change.disabled } : {}),
      },
      actor.name,
    );
    if (!changed) throw new ApiError(404, "unknown_user", `There is no user named ${username}.`);
    const { before, after } = changed;
    // Given back (re-enabled, or no longer a viewer): sites may issue this user consoles again.
    const regained = (before.disabled && !after.disabled) || (before.role === "viewer" && after.role !== "viewer");
    if (regained && !after.disabled) {
      const sites = await registry.listSites();
      await Promise.all(sites.flatMap((site) => [after.id, `access:${username}`].map((id) => siteOf(c.env, site).restoreUserAccess(id))));
    }
    audit(c.env, (p) => c.executionCtx.waitUntil(p), {
      type: "user.changed",
      actor: actor.name,
      detail: {
        username,
        ...(change.role !== undefined ? { role: { from: before.role, to: after.role } } : {}),
        ...(change.disabled !== undefined ? { disabled: after.disabled } : {}),
        ...(change.password !== undefined ? { password: "changed" } : {}),
      },
    });
    return c.json({ username, role: after.role, disabled: after.disabled });
  })
  .delete("/:username", async (c) => {
    const username = c.req.param("username");
    if (username === c.env.ADMIN_USERNAME) builtInRefused();
    const actor = c.get("user").name;
    if (actor === username) throw new ApiError(409, "own_account", "You cannot delete your own account; ask another administrator.");
    if (!(await registryOf(c.env).deleteUser(username, actor))) throw new ApiError(404, "unknown_user", `There is no user named ${username}.`);
    audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "user.deleted", actor, detail: { username } });
    return c.body(null, 204);
  });
