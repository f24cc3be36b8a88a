/**
 * Run after `npm install` changes package-lock.json.
 *
 * The registry this project's machines reach carries only the Linux builds of workerd, so npm
 * leaves workerd's macOS and Windows optional packages out of the lock file, and `npm ci` then
 * refuses the lock as out of sync. This adds those entries back (platform-gated and optional, so
 * no machine here ever downloads them), keeping `npm ci` working on a clean clone.
 */
import { readFileSync, writeFileSync } from "node:fs";

const file = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(file, "utf8"));
const packages: Record<string, { version: string; optionalDependencies?: Record<string, string> }> = lock.packages;
const platforms: Record<string, { os: string; cpu: string }> = {
  "@cloudflare/workerd-darwin-64": { os: "darwin", cpu: "x64" },
  "@cloudflare/workerd-darwin-arm64": { os: "darwin", cpu: "arm64" },
  "@cloudflare/workerd-windows-64": { os: "win32", cpu: "x64" },
};

let added = 0;
for (const [path, pkg] of Object.entries(packages)) {
  if (!path.endsWith("node_modules/workerd")) continue;
  for (const [name, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const target = platforms[name];
    const key = `node_modules/${name}`;
    if (!target || packages[key]) continue;
    packages[key] = {
      version,
      cpu: [target.cpu],
      dev: true,
      license: "Apache-2.0",
      optional: true,
      os: [target.os],
      engines: { node: ">=16" },
    } as never;
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : 1)));
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: ${added} platform entries added`);
