/**
 * Cloudflare Access assertions for tests in the Workers pool, signed with the test key whose
 * public half the edge trusts (vitest.workers.config.ts).
 */
import { env } from "cloudflare:test";
import { importJWK, SignJWT } from "jose";

/** A signed Access JWT; each claim defaults to a valid one for this test edge. */
export async function accessToken(claims: { aud?: string; exp?: number; iss?: string; email?: string } = {}): Promise<string> {
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

/** The header Access puts on a request of this person's. */
export async function accessHeader(email: string): Promise<Record<string, string>> {
  return { "Cf-Access-Jwt-Assertion": await accessToken({ email }) };
}
