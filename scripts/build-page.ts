/**
 * Bundles the browser pages (noVNC included, from npm) into .build/assets, which wrangler serves
 * as static assets. wrangler.toml's [build] runs it before `wrangler deploy` and `wrangler dev`;
 * `npm test` runs it too (the test pool does not run [build]).
 */
import { build } from "esbuild";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = `${root}.build/assets`;
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { console: `${root}worker/page/console.tsx`, app: `${root}worker/page/app.tsx`, player: `${root}worker/page/player.ts` },
  // The operator app is JSX for Hono's DOM renderer (hono/jsx/dom).
  jsx: "automatic",
  jsxImportSource: "hono/jsx/dom",
  outdir: out,
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  // Maps are written beside the bundles for debugging, unreferenced and never uploaded: the
  // assets are public (no sign-in in front of them), and the maps carry the whole source.
  sourcemap: "external",
  logLevel: "warning",
});
for (const file of ["console.html", "index.html", "player.html", "porthole.css"]) {
  cpSync(`${root}worker/page/${file}`, `${out}/${file}`);
}
writeFileSync(`${out}/.assetsignore`, "*.map\n");
