/**
 * `npm run build`: what the Worker serves (.build/assets, via build-page.ts) and the single-file
 * command line, dist/porthole.mjs: the connector and its dependencies in one ESM file that runs on
 * Node >= 20 with no node_modules, on any CPU (nothing native is bundled).
 */
import { build } from "esbuild";
import { chmodSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import "./build-page.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const { version } = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { version: string };

await build({
  entryPoints: [`${root}connector/cli/porthole.ts`],
  outfile: `${root}dist/porthole.mjs`,
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
chmodSync(`${root}dist/porthole.mjs`, 0o755);
console.log(`dist/porthole.mjs: porthole ${version}`);
