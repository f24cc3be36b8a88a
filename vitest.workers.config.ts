/** Tests that run inside workerd: the Worker's routes and the site Durable Object. */
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: { ADMIN_USERNAME: "admin", ADMIN_PASSWORD: "correct horse battery staple" },
      },
    }),
  ],
  test: {
    include: ["test/workers/**/*.test.ts"],
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
