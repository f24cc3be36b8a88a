/**
 * Who is calling: a session cookie (browsers), an API token (automation), or a Cloudflare Access
 * JWT. Sign-in checks the administrator from the ADMIN_USERNAME / ADMIN_PASSWORD secrets and the
 * accounts in the registry, throttled per account and per client address.
 */
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { z } from "zod";
import { audit } from "../audit.ts";
import type { AppEnv, Env, Role, User } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { readJson } from "../http/validate.ts";
import { registryOf } from "../registry/registry-object.ts";
import { accessDefaultRole, verifyAccess } from "./access.ts";
import { burnPasswordCheck, verifyPassword } from "./passwords.ts";
import { randomToken, secretsEqual, sha256Hex } from "./secrets.ts";

export const SESSION_COOKIE = "porthole_session";
const SESSION_TTL_MS = 12 * 3600_000;
/** API tokens carry a prefix so they are recognisable in a leaked-secrets scan. */
export const API_TOKEN_PREFIX = "pha_";

const SignIn = z.object({ username: z.string().min(1).max(128), password: z.string().min(1).max(1024) });

export function clientAddress(c: Context<AppEnv>): string {
  return c.req.header("CF-Connecting-IP") ?? "local";
}

/** The role of `username`, checking the password: the secrets' administrator, then the accounts. */
async function checkPassword(env: Env, username: string, password: string): Promise<Role | null> {
  const { ADMIN_USERNAME, ADMIN_PASSWORD } = env;
  if (ADMIN_USERNAME && ADMIN_PASSWORD && (await secretsEqual(username, ADMIN_USERNAME))) {
    return (await secretsEqual(password, ADMIN_PASSWORD)) ? "admin" : null;
  }
  const user = await registryOf(env).getUser(username);
  if (!user) {
    await burnPasswordCheck(password);
    return null;
  }
  return (await verifyPassword(password, user.password_hash)) ? user.role : null;
}

export async function signIn(c: Context<AppEnv>): Promise<Response> {
  const { username, password } = await readJson(c, SignIn);
  const registry = registryOf(c.env);
  const address = clientAddress(c);
  const wait = await registry.signInRetryAfter(username, address);
  if (wait > 0) {
    c.header("Retry-After", String(wait));
    throw new ApiError(429, "too_many_attempts", `Too many failed sign-ins: try again in ${wait} s.`);
  }
  const role = await checkPassword(c.env, username, password);
  const waitUntil = (p: Promise<unknown>) => c.executionCtx.waitUntil(p);
  if (!role) {
    await registry.signInFailed(username, address);
    audit(c.env, waitUntil, { type: "signin.failed", actor: username, detail: { address } });
    throw new ApiError(401, "invalid_credentials", "Wrong username or password.");
  }
  await registry.signInSucceeded(username);
  const token = randomToken();
  await registry.createSession(await sha256Hex(token), { user: username, role, expiresAt: Date.now() + SESSION_TTL_MS });
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: "Strict",
    secure: new URL(c.req.url).protocol === "https:",
    path: "/",
    maxAge: SESSION_TTL_MS / 1000,
  });
  audit(c.env, waitUntil, { type: "signin.ok", actor: username, detail: { address, role } });
  return c.json({ user: username, role });
}

export async function signOut(c: Context<AppEnv>): Promise<Response> {
  const token = getCookie(c, SESSION_COOKIE);
  if (token) await registryOf(c.env).deleteSession(await sha256Hex(token));
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: new URL(c.req.url).protocol === "https:" });
  return c.body(null, 204);
}

/** The current role of an account (the secrets' administrator is always admin), or null if gone. */
async function roleOf(env: Env, username: string): Promise<Role | null> {
  if (env.ADMIN_USERNAME && username === env.ADMIN_USERNAME) return "admin";
  return (await registryOf(env).getUser(username))?.role ?? null;
}

/** The caller of this request, if any. */
export async function currentUser(c: Context<AppEnv>): Promise<User | null> {
  const registry = registryOf(c.env);
  const cookie = getCookie(c, SESSION_COOKIE);
  if (cookie) {
    const session = await registry.getSession(await sha256Hex(cookie));
    if (session) return { name: session.user, role: session.role, via: "session" };
  }
  const bearer = c.req.header("Authorization")?.match(/^Bearer (\S+)$/)?.[1];
  if (bearer?.startsWith(API_TOKEN_PREFIX)) {
    const owner = await registry.tokenOwner(await sha256Hex(bearer));
    const role = owner ? await roleOf(c.env, owner.user) : null;
    if (owner && role) return { name: owner.user, role, via: "token" };
  }
  const jwt = c.req.header("Cf-Access-Jwt-Assertion");
  if (jwt) {
    const identity = await verifyAccess(c.env, jwt);
    if (identity) {
      const role = (await roleOf(c.env, identity.email)) ?? accessDefaultRole(c.env);
      return { name: identity.email, role, via: "access" };
    }
  }
  return null;
}

/** Every /api route but sign-in: a live session, an API token or an Access JWT, or 401. */
export const requireUser: MiddlewareHandler<AppEnv> = async (c, next) => {
  const user = await currentUser(c);
  if (!user) throw new ApiError(401, "not_signed_in", "Sign in first (POST /api/session), or present an API token.");
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
