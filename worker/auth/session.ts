/**
 * Browser sign-in: the administrator from the ADMIN_USERNAME / ADMIN_PASSWORD secrets, an
 * HttpOnly session cookie whose SHA-256 lives in the registry, revoked server-side on sign-out.
 */
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { z } from "zod";
import type { AppEnv, Role } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { readJson } from "../http/validate.ts";
import { registryOf } from "../registry/registry-object.ts";
import { randomToken, secretsEqual, sha256Hex } from "./secrets.ts";

export const SESSION_COOKIE = "porthole_session";
const SESSION_TTL_MS = 12 * 3600_000;

const SignIn = z.object({ username: z.string().min(1).max(128), password: z.string().min(1).max(1024) });

export async function signIn(c: Context<AppEnv>): Promise<Response> {
  const { username, password } = await readJson(c, SignIn);
  const { ADMIN_USERNAME, ADMIN_PASSWORD } = c.env;
  if (!ADMIN_USERNAME || !ADMIN_PASSWORD) {
    throw new ApiError(503, "not_configured", "No administrator is configured: set ADMIN_USERNAME and ADMIN_PASSWORD.");
  }
  // Both checks always run, so timing does not tell which one failed.
  const [userOk, passOk] = await Promise.all([
    secretsEqual(username, ADMIN_USERNAME),
    secretsEqual(password, ADMIN_PASSWORD),
  ]);
  if (!userOk || !passOk) throw new ApiError(401, "invalid_credentials", "Wrong username or password.");

  const token = randomToken();
  const role: Role = "admin";
  const expiresAt = Date.now() + SESSION_TTL_MS;
  await registryOf(c.env).createSession(await sha256Hex(token), { user: username, role, expiresAt });
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: "Strict",
    secure: new URL(c.req.url).protocol === "https:",
    path: "/",
    maxAge: SESSION_TTL_MS / 1000,
  });
  return c.json({ user: username, role });
}

export async function signOut(c: Context<AppEnv>): Promise<Response> {
  const token = getCookie(c, SESSION_COOKIE);
  if (token) await registryOf(c.env).deleteSession(await sha256Hex(token));
  deleteCookie(c, SESSION_COOKIE, { path: "/" });
  return c.body(null, 204);
}

/** The signed-in user of this request, if any. */
export async function currentUser(c: Context<AppEnv>): Promise<AppEnv["Variables"]["user"] | null> {
  const token = getCookie(c, SESSION_COOKIE);
  const session = token ? await registryOf(c.env).getSession(await sha256Hex(token)) : null;
  return session ? { name: session.user, role: session.role } : null;
}

/** Every /api route but sign-in: a live session cookie, or 401. */
export const requireUser: MiddlewareHandler<AppEnv> = async (c, next) => {
  const user = await currentUser(c);
  if (!user) throw new ApiError(401, "not_signed_in", "Sign in first (POST /api/session).");
  c.set("user", user);
  await next();
};

export function requireRole(...roles: Role[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!roles.includes(c.get("user").role)) {
      throw new ApiError(403, "forbidden", `This needs the ${roles.join(" or ")} role.`);
    }
    await next();
  };
}
