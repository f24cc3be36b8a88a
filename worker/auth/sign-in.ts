/**
 * Who is calling: a sign-in's cookie (browsers), an API token (automation), or a Cloudflare Access
 * JWT. Sign-in checks the administrator from the ADMIN_USERNAME / ADMIN_PASSWORD secrets and the
 * accounts in the registry, throttled per account and per client address.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { z } from "zod";
import { audit } from "../audit.ts";
import type { AppEnv, Env, Role, User } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { validBody } from "../http/validate.ts";
import type { Me, SignInBody } from "../../shared/api/types.ts";
import { nameKey } from "../registry/accounts-store.ts";
import { registryOf } from "../registry/registry-object.ts";
import { accessDefaultRole, verifyAccess } from "./access.ts";
import { builtInAdminId, builtInSecrets, isBuiltInName } from "./builtin-admin.ts";
import { DECOY_HASH, verifyPassword } from "./passwords.ts";
import { bearerToken, randomToken, sha256Hex } from "./secrets.ts";

export const SIGN_IN_COOKIE = "porthole_session";
const SIGN_IN_TTL_MS = 12 * 3600_000;
/** API tokens carry a prefix so they are recognisable in a leaked-secrets scan. */
export const API_TOKEN_PREFIX = "pha_";

const SignIn = z.object({ username: z.string().min(1).max(128), password: z.string().min(1).max(1024) });

export function clientAddress(c: Context<AppEnv>): string {
  return c.req.header("CF-Connecting-IP") ?? "local";
}

/**
 * Who `username` is, checking the password: the secrets' administrator, then the accounts. Every
 * name takes the same path and the same work, one registry read and one key derivation (the built-in
 * administrator's password is checked against its derived verifier, an unknown name against a
 * decoy hash): neither timing nor answer tells a built-in, disabled, unknown or real name apart.
 */
async function checkPassword(env: Env, username: string, password: string): Promise<{ id: string; name: string; role: Role } | null> {
  const secrets = await builtInSecrets(env);
  const builtIn = secrets !== null && isBuiltInName(env, username);
  const user = await registryOf(env).getUser(username);
  const right = await verifyPassword(password, builtIn ? secrets.verifier : (user?.password_hash ?? DECOY_HASH));
  if (!right) return null;
  if (builtIn) {
    // Asked afresh, not from this isolate's memory: secrets replaced since are refused.
    const id = await builtInAdminId(env, true);
    return id ? { id, name: secrets.username, role: "admin" } : null;
  }
  // A disabled account answers like a wrong password: nothing to learn by probing.
  return user && user.disabled !== 1 ? { id: user.id, name: user.username, role: user.role } : null;
}

/** POST /api/session: sign in with a username and password. */
export const signIn = new Hono<AppEnv>().post("/", validBody<SignInBody>()(SignIn), (c) => {
  const { username, password } = c.req.valid("json");
  return passwordSignIn(c, username, password);
});

async function passwordSignIn(c: Context<AppEnv>, username: string, password: string): Promise<Response> {
  const registry = registryOf(c.env);
  const address = clientAddress(c);
  // Checked and recorded as a failure in one step of the registry, before the password is looked
  // at: parallel guesses cannot all pass the check first.
  // Names are case-insensitive, so is the per-account limit: another case is no fresh allowance.
  const attempt = await registry.signInAttempt(nameKey(username), address);
  if (!attempt.ok) {
    c.header("Retry-After", String(attempt.retryAfter));
    throw new ApiError(429, "too_many_attempts", `Too many failed sign-ins: try again in ${attempt.retryAfter} s.`);
  }
  const who = await checkPassword(c.env, username, password);
  const waitUntil = (p: Promise<unknown>) => c.executionCtx.waitUntil(p);
  if (!who) {
    audit(c.env, waitUntil, { type: "signin.failed", actor: username, detail: { address } });
    throw new ApiError(401, "invalid_credentials", "Wrong username or password.");
  }
  const { role } = who;
  await registry.signInSucceeded(attempt.attempt, nameKey(username), address);
  const token = randomToken();
  await registry.createSignIn(await sha256Hex(token), { userId: who.id, user: who.name, expiresAt: Date.now() + SIGN_IN_TTL_MS });
  setCookie(c, SIGN_IN_COOKIE, token, {
    httpOnly: true,
    sameSite: "Strict",
    secure: new URL(c.req.url).protocol === "https:",
    path: "/",
    maxAge: SIGN_IN_TTL_MS / 1000,
  });
  audit(c.env, waitUntil, { type: "signin.ok", actor: who.name, detail: { address, role } });
  return c.json({ user: who.name, role } satisfies Me);
}

export async function signOut(c: Context<AppEnv>): Promise<Response> {
  const token = getCookie(c, SIGN_IN_COOKIE);
  if (token) await registryOf(c.env).deleteSignIn(await sha256Hex(token));
  deleteCookie(c, SIGN_IN_COOKIE, { path: "/", secure: new URL(c.req.url).protocol === "https:" });
  return c.body(null, 204);
}

/** The caller of this request, if any. */
export async function currentUser(c: Context<AppEnv>): Promise<User | null> {
  const registry = registryOf(c.env);
  const cookie = getCookie(c, SIGN_IN_COOKIE);
  if (cookie) {
    // The account's current role and state, not what they were at sign-in.
    const who = await registry.signInUser(await sha256Hex(cookie));
    if (who) return { ...who, via: "session" }; // `via` is on the wire (GET /api/session): its word kept
  }
  const bearer = bearerToken(c.req.header("Authorization"));
  if (bearer?.startsWith(API_TOKEN_PREFIX)) {
    const who = await registry.tokenUser(await sha256Hex(bearer));
    if (who) return { ...who, via: "token" };
  }
  const jwt = c.req.header("Cf-Access-Jwt-Assertion");
  if (jwt) {
    const identity = await verifyAccess(c.env, jwt);
    if (identity) {
      const email = identity.email;
      if (isBuiltInName(c.env, email)) {
        // Asked afresh: an isolate of a previous deployment must not keep a replaced admin in.
        const id = await builtInAdminId(c.env, true);
        return id ? { id, name: c.env.ADMIN_USERNAME!, role: "admin", via: "access" } : null;
      }
      // The registry decides (its account, else its identity's role or block, else the default).
      const who = await registry.accessUser(email, accessDefaultRole(c.env));
      return who ? { ...who, via: "access" } : null;
    }
  }
  return null;
}

/** Every /api route but sign-in: a live sign-in, an API token or an Access JWT, or 401. */
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
