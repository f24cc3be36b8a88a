/** Tests that run in Node: unit tests beside the code, and end-to-end tests on real parts. */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    reporters: ["default", "./test/summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["shared/**/*.test.ts", "connector/**/*.test.ts", "worker/**/*.test.ts", "test/simulators/**/*.test.ts", "test/harness/**/*.test.ts"],
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
