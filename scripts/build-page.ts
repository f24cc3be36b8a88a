/**
 * Bundles the browser pages (noVNC included, from npm) into .build/assets, which wrangler serves
 * as static assets. Run before `wrangler dev` and the tests.
 */
import { build } from "esbuild";
import { cpSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = `${root}.build/assets`;
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { console: `${root}worker/page/console.ts`, app: `${root}worker/page/app.tsx` },
  // The operator app is JSX for Hono's DOM renderer (hono/jsx/dom).
  jsx: "automatic",
  jsxImportSource: "hono/jsx/dom",
  outdir: out,
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  logLevel: "warning",
});
for (const file of ["console.html", "index.html", "porthole.css"]) {
  cpSync(`${root}worker/page/${file}`, `${out}/${file}`);
}
