/** Tests that run inside workerd: the Worker's routes and the site Durable Object. */
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { exportJWK, generateKeyPair } from "jose";
import { defineConfig } from "vitest/config";

// A Cloudflare Access team of our own: its key set is served to the Worker through Miniflare's
// outbound service, and tests sign tokens with the private key (passed in as a binding).
const ACCESS_TEAM = "https://porthole-test.cloudflareaccess.com";
const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
const publicJwk = { ...(await exportJWK(publicKey)), kid: "test-key", alg: "RS256", use: "sig" };
const privateJwk = { ...(await exportJWK(privateKey)), kid: "test-key", alg: "RS256" };

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          ADMIN_USERNAME: "admin",
          ADMIN_PASSWORD: "correct horse battery staple",
          ACCESS_TEAM_DOMAIN: ACCESS_TEAM,
          ACCESS_AUD: "porthole-test-aud",
          ACCESS_DEFAULT_ROLE: "operator",
          // Far beyond any clock jump the other tests make; the idle tests jump past it.
          IDLE_TIMEOUT_SECONDS: "600",
          TEST_ACCESS_PRIVATE_JWK: JSON.stringify(privateJwk),
        },
        outboundService: (request: Request) => {
          if (request.url === `${ACCESS_TEAM}/cdn-cgi/access/certs`) return Response.json({ keys: [publicJwk] });
          return new Response("no network in tests", { status: 503 });
        },
      },
    }),
  ],
  test: {
    // Scenarios across the Worker and its objects in test/workers/; a module's own tests that need
    // the runtime (its bindings, objects) sit beside it as *.workers.test.ts.
    include: ["test/workers/**/*.test.ts", "worker/**/*.workers.test.ts"],
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
