/**
 * The single-file command line, dist/porthole.mjs (or the path given as the first argument): the
 * connector and its dependencies in one ESM file that runs on Node >= 20 with no node_modules, on
 * any CPU (nothing native is bundled). Tests build it into a temporary directory so that they never
 * rewrite what a running `wrangler dev` serves.
 */
import { build } from "esbuild";
import { chmodSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const { version } = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { version: string };
const outfile = resolve(process.argv[2] ?? `${root}dist/porthole.mjs`);

await build({
  entryPoints: [`${root}connector/cli/porthole.ts`],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // The version is written in once here: the file runs with no package.json beside it.
  define: { PORTHOLE_VERSION: JSON.stringify(version) },
  // Some dependencies (pino, ws) are CommonJS and call require() for Node's own modules, which an
  // ES module has no binding for: give the bundle one.
  banner: {
    js: `#!/usr/bin/env node\nimport { createRequire as __portholeCreateRequire } from "node:module";\nconst require = __portholeCreateRequire(import.meta.url);`,
  },
  // ws loads these native speed-ups only if installed; the bundle runs on its pure-JS paths.
  external: ["bufferutil", "utf-8-validate"],
  legalComments: "eof",
  logLevel: "warning",
});
// Runnable as `./porthole.mjs` too (the banner starts with `#!/usr/bin/env node`).
chmodSync(outfile, 0o755);
console.log(`${outfile}: porthole ${version}`);
