/**
 * The built-in administrator (secrets ADMIN_USERNAME / ADMIN_PASSWORD). It has no account row, so
 * a change of its secrets is noticed through a fingerprint: a PBKDF2 key of the password (salted
 * with the username, so the same work as any account's hash) and the username. The registry keeps
 * the fingerprint in force and gives each one its own user id (a "generation"): when another
 * fingerprint shows up, the old generation's sessions, API tokens, consoles and share links end
 * as they would for a deleted account (Registry.builtInAdmin).
 *
 * Secrets only change with a new deployment, so each isolate computes its fingerprint once and
 * reports it to the registry once, on its first request (builtInAdminCheck), before any credential
 * of that request is looked at, with its Worker version's upload time: an isolate of an older
 * version still serving (a rollout, a gradual deployment) never brings replaced secrets back.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv, Env } from "../env.ts";
import { registryOf } from "../registry/registry-object.ts";
import { hashPassword } from "./passwords.ts";
import { sha256Hex } from "./secrets.ts";

export interface BuiltInSecrets {
  username: string;
  /** The password's hash in the form verifyPassword reads: sign-in checks it like any account's. */
  verifier: string;
  /** What the registry stores and compares: a digest of the username and the verifier. */
  fingerprint: string;
}

const encoder = new TextEncoder();
const computed = new Map<string, Promise<BuiltInSecrets>>();
const reported = new Map<string, Promise<string | null>>();

/** The built-in administrator's verifier and fingerprint for `env`'s secrets, or null without them. */
export function builtInSecrets(env: Env): Promise<BuiltInSecrets | null> {
  const { ADMIN_USERNAME: username, ADMIN_PASSWORD: password } = env;
  if (!username || !password) return Promise.resolve(null);
  const key = `${username}\0${password}`;
  let found = computed.get(key);
  if (!found) {
    // One deployment has one set of secrets; tests run a few. Bounded all the same.
    if (computed.size >= 4) computed.clear();
    found = (async () => {
      const salt = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(`porthole built-in admin\0${username}`))).slice(0, 16);
      const verifier = await hashPassword(password, salt);
      return { username, verifier, fingerprint: await sha256Hex(`${username}\0${verifier}`) };
    })();
    computed.set(key, found);
    found.catch(() => computed.delete(key));
  }
  return found;
}

/** Whether `username` names the built-in administrator (names are case-insensitive). */
export function isBuiltInName(env: Env, username: string): boolean {
  return !!env.ADMIN_USERNAME && !!env.ADMIN_PASSWORD && username.toLowerCase() === env.ADMIN_USERNAME.toLowerCase();
}

/**
 * When this isolate's Worker version was uploaded (CF_VERSION_METADATA), or null where the binding
 * is missing or says nothing usable: the registry then falls back to its grace period.
 */
function versionAt(env: Env): number | null {
  const t = Date.parse(env.CF_VERSION_METADATA?.timestamp ?? "");
  return Number.isFinite(t) ? t : null;
}

/**
 * The built-in administrator's current user id, after telling the registry which secrets this
 * isolate runs with (once per isolate), or null: no secrets, or secrets the registry retired.
 */
export async function builtInAdminId(env: Env, fresh = false): Promise<string | null> {
  const secrets = await builtInSecrets(env);
  const key = secrets?.fingerprint ?? "none";
  let id = fresh ? undefined : reported.get(key);
  if (!id) {
    if (reported.size >= 4) reported.clear();
    id = registryOf(env).builtInAdmin(secrets && { username: secrets.username, fingerprint: secrets.fingerprint }, versionAt(env));
    reported.set(key, id);
    id.catch(() => reported.delete(key));
  }
  return id;
}

/** Every request but /healthz: the registry hears of changed secrets before credentials are checked. */
export const builtInAdminCheck: MiddlewareHandler<AppEnv> = async (c, next) => {
  await builtInAdminId(c.env);
  await next();
};
