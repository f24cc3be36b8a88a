/**
 * Cloudflare Access: when ACCESS_TEAM_DOMAIN and ACCESS_AUD are set, a valid
 * `Cf-Access-Jwt-Assertion` signs the user in. Keys come from the team's JWKS, fetched once per
 * isolate and cached by jose.
 */
import { createRemoteJWKSet, jwtVerify } from "jose";
import type { Env, Role } from "../env.ts";
import { ROLES } from "../../shared/api/types.ts";

const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

/** `myteam.cloudflareaccess.com` → `https://myteam.cloudflareaccess.com` (a full URL is kept as is). */
export function teamUrl(domain: string): string {
  return (/^https?:\/\//.test(domain) ? domain : `https://${domain}`).replace(/\/+$/, "");
}

export interface AccessIdentity {
  email: string;
}

/** The identity in a valid Access token, or null (missing, expired, wrong audience, bad signature). */
export async function verifyAccess(env: Env, token: string): Promise<AccessIdentity | null> {
  if (!env.ACCESS_TEAM_DOMAIN || !env.ACCESS_AUD) return null;
  const issuer = teamUrl(env.ACCESS_TEAM_DOMAIN);
  let jwks = keySets.get(issuer);
  if (!jwks) {
    jwks = createRemoteJWKSet(new URL(`${issuer}/cdn-cgi/access/certs`));
    keySets.set(issuer, jwks);
  }
  try {
    const { payload } = await jwtVerify(token, jwks, { issuer, audience: env.ACCESS_AUD, algorithms: ["RS256", "ES256"] });
    const email = typeof payload.email === "string" ? payload.email : null;
    return email ? { email } : null;
  } catch {
    return null;
  }
}

/** The role of an Access user with no Porthole account (ACCESS_DEFAULT_ROLE, default viewer). */
export function accessDefaultRole(env: Env): Role {
  const role = env.ACCESS_DEFAULT_ROLE;
  return (ROLES as readonly string[]).includes(role ?? "") ? (role as Role) : "viewer";
}
