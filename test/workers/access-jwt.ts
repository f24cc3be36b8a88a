/** Cloudflare Access JWTs signed by the test team's key (vitest.workers.config.ts serves its key set). */
import { env } from "cloudflare:test";
import { importJWK, SignJWT } from "jose";

export interface AccessClaims {
  aud?: string;
  exp?: number;
  iss?: string;
  email?: string;
}

/** A JWT as Access would send it, valid for five minutes unless `claims` say otherwise. */
export async function accessToken(claims: AccessClaims = {}): Promise<string> {
  const key = await importJWK(JSON.parse(env.TEST_ACCESS_PRIVATE_JWK), "RS256");
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email: claims.email ?? "ada@example.com" })
    .setProtectedHeader({ alg: "RS256", kid: "test-key" })
    .setIssuer(claims.iss ?? env.ACCESS_TEAM_DOMAIN!)
    .setAudience(claims.aud ?? env.ACCESS_AUD!)
    .setIssuedAt(now - 10)
    .setExpirationTime(claims.exp ?? now + 300)
    .sign(key);
}

/** The header Access adds to a signed-in person's requests. */
export async function accessHeader(email: string): Promise<Record<string, string>> {
  return { "Cf-Access-Jwt-Assertion": await accessToken({ email }) };
}
