/**
 * Tests that run in Node, in tiers that each mean one thing:
 * - unit: beside the code, no root, no network beyond loopback ports of their own;
 * - integration: the hypervisor simulators themselves (the CloudTower one listens on port 443 of
 *   loopback addresses, as a real tower does: root);
 * - e2e: real wrangler dev, connector processes, Xvnc and Chromium.
 * (The Worker and its objects are tested inside workerd: vitest.workers.config.ts.)
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    reporters: ["default", "./test/summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["shared/**/*.test.ts", "connector/**/*.test.ts", "worker/**/*.test.ts", "test/harness/**/*.test.ts"],
          // Those need workerd (vitest.workers.config.ts).
          exclude: ["worker/**/*.workers.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/simulators/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/harness/global-setup.ts"],
          // One wrangler dev, one Xvnc and Chromium on a 2-core machine: files run one at a time.
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
