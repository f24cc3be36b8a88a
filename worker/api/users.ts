import { type Context, Hono } from "hono";
import { z } from "zod";
import { audit } from "../audit.ts";
import { accessDefaultRole } from "../auth/access.ts";
import { isBuiltInName } from "../auth/builtin-admin.ts";
import { hashPassword } from "../auth/passwords.ts";
import { requireRole } from "../auth/sign-in.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { validBody } from "../http/validate.ts";
import { type NewUserBody, ROLES, type UserChangeBody, type UserChanged, type UserEntry } from "../../shared/api/types.ts";
import { accessId } from "../registry/identities-store.ts";
import { registryOf } from "../registry/registry-object.ts";
import { siteOf } from "./sites.ts";

const Password = z.string().min(12, "use at least 12 characters").max(1024);
const RoleField = z.enum(ROLES, { error: "role is admin, operator, viewer, member or auditor" });

const NewUser = z.object({
  username: z.string().regex(/^[A-Za-z0-9._@+-]{1,128}$/, "use letters, digits and . _ @ + - (an email address works)"),
  password: Password,
  role: RoleField,
});

const UserChange = z
  .strictObject({ role: RoleField.optional(), password: Password.optional(), disabled: z.boolean().optional() })
  .refine((p) => p.role !== undefined || p.password !== undefined || p.disabled !== undefined, "give role, password or disabled");

/** What Cloudflare Access signs in with; a name that is not one cannot be an Access identity. */
const EMAIL = /^[^@\s]{1,64}@[^@\s]{1,190}$/;

function builtInRefused(): never {
  throw new ApiError(409, "built_in_user", "This administrator comes from the ADMIN_USERNAME secret; change the secret instead.");
}

export const users = new Hono<AppEnv>()
  .use(requireRole("admin"))
  .post("/", validBody<NewUserBody>()(NewUser), async (c) => {
    const { username, password, role } = c.req.valid("json");
    if (isBuiltInName(c.env, username) || !(await registryOf(c.env).createUser(username, role, await hashPassword(password)))) {
      throw new ApiError(409, "user_exists", `A user named ${username} already exists.`);
    }
    audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "user.created", actor: c.get("user").name, detail: { username, role } });
    return c.json({ username, role } satisfies UserEntry, 201);
  })
  .get("/", async (c) => {
    const registry = registryOf(c.env);
    const list = await registry.listUsers();
    const builtIn: UserEntry[] = c.env.ADMIN_USERNAME ? [{ username: c.env.ADMIN_USERNAME, role: "admin", builtIn: true }] : [];
    // Access identities (seen, or set by an admin, or whose account was deleted) with no account of
    // that name: an account decides for its email.
    const accounts = new Set(list.map((u) => u.username.toLowerCase()));
    const identities = (await registry.listAccessIdentities())
      .filter((i) => !accounts.has(i.email))
      .map((i) => ({ username: i.email, role: i.role ?? accessDefaultRole(c.env), disabled: i.disabled, access: true }));
    return c.json([...builtIn, ...list.map(({ id: _, ...u }) => u), ...identities] satisfies UserEntry[]);
  })
  /**
   * Role, password, disabled. Takes effect at once: a lowered role applies to the next request of
   * every sign-in and token; disabling ends sign-ins, tokens, consoles, tickets and links; lowering
   * to viewer ends full-control consoles and tickets and the user's links; a new password ends
   * sign-ins (tokens stay).
   */
  .patch("/:username", validBody<UserChangeBody>()(UserChange), async (c) => {
    const username = c.req.param("username");
    if (isBuiltInName(c.env, username)) builtInRefused();
    const change = c.req.valid("json");
    const actor = c.get("user");
    if (actor.name.toLowerCase() === username.toLowerCase() && (change.disabled === true || (change.role !== undefined && change.role !== "admin"))) {
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
    if (!changed) return changeAccessIdentity(c, username, change);
    const { before, after } = changed;
    // Given back (re-enabled, or no longer a viewer): sites may issue this user consoles again.
    const regained = (before.disabled && !after.disabled) || (before.role === "viewer" && after.role !== "viewer");
    if (regained && !after.disabled) await restoreAccess(c, [after.id, accessId(username)]);
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
    return c.json({ username, role: after.role, disabled: after.disabled } satisfies UserChanged);
  })
  .delete("/:username", async (c) => {
    const username = c.req.param("username");
    if (isBuiltInName(c.env, username)) builtInRefused();
    const actor = c.get("user").name;
    if (actor.toLowerCase() === username.toLowerCase()) throw new ApiError(409, "own_account", "You cannot delete your own account; ask another administrator.");
    const registry = registryOf(c.env);
    if (await registry.deleteUser(username, actor)) {
      audit(c.env, (p) => c.executionCtx.waitUntil(p), { type: "user.deleted", actor, detail: { username } });
      return c.body(null, 204);
    }
    // Deleting an Access identity blocks it: it is remembered, not forgotten (so it cannot return
    // at the default role); PATCH {disabled:false} lets it in again.
    if (EMAIL.test(username) && (await registry.getAccessIdentity(username))) {
      await changeAccessIdentity(c, username, { disabled: true });
      return c.body(null, 204);
    }
    throw new ApiError(404, "unknown_user", `There is no user named ${username}.`);
  });

/**
 * PATCH for a name with no account: a Cloudflare Access identity (an email address), seen before
 * or not. Its role or block is kept in the registry; a password has no meaning there.
 */
async function changeAccessIdentity(c: Context<AppEnv>, email: string, change: UserChangeBody): Promise<Response> {
  if (!EMAIL.test(email)) throw new ApiError(404, "unknown_user", `There is no user named ${email}.`);
  if (change.password !== undefined) {
    throw new ApiError(404, "unknown_user", `There is no account named ${email}: Cloudflare Access signs this identity in, so it has no password here.`);
  }
  const actor = c.get("user").name;
  const { before, after } = await registryOf(c.env).setAccessIdentity(
    email,
    { ...(change.role !== undefined ? { role: change.role } : {}), ...(change.disabled !== undefined ? { disabled: change.disabled } : {}) },
    accessDefaultRole(c.env),
    actor,
  );
  if ((before.disabled && !after.disabled) || (before.role === "viewer" && after.role !== "viewer")) {
    if (!after.disabled) await restoreAccess(c, [accessId(email)]);
  }
  audit(c.env, (p) => c.executionCtx.waitUntil(p), {
    type: "user.changed",
    actor,
    detail: {
      username: email,
      access: true,
      ...(change.role !== undefined ? { role: { from: before.role, to: after.role } } : {}),
      ...(change.disabled !== undefined ? { disabled: after.disabled } : {}),
    },
  });
  return c.json({ username: email, role: after.role, disabled: after.disabled, access: true } satisfies UserChanged);
}

/** Given back (re-enabled, or no longer a viewer): sites may issue these user ids consoles again. */
async function restoreAccess(c: Context<AppEnv>, ids: string[]): Promise<void> {
  const sites = await registryOf(c.env).listSites();
  await Promise.all(sites.flatMap((site) => ids.map((id) => siteOf(c.env, site).restoreUserAccess(id))));
}
