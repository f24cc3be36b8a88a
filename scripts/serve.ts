/**
 * `npm run serve -- [--port N] [--ip ADDR] [--data DIR] [--vars FILE]`: the edge on workerd itself,
 * without `wrangler dev`'s proxy. A self-hosted edge (behind your own TLS proxy) and the benchmark's
 * production-like path; docs/deploy.md, "Self-hosted edge", is the manual.
 *
 * The Worker is bundled exactly as `wrangler deploy` bundles it (`wrangler deploy --dry-run
 * --outdir`, which also builds the pages), then run by Miniflare: the same library `wrangler dev`
 * runs its runtime with, one workerd process, with the bindings wrangler.toml declares (wrangler's
 * own mapping), the Durable Objects' SQLite storage and the R2 bucket on disk under `--data`, and the
 * static assets. workerd alone has no R2 or static-assets implementation: Miniflare brings them.
 *
 * Vars and secrets, later ones winning: wrangler.toml's [vars], the vars file (`--vars`, default
 * `.dev.vars` beside wrangler.toml when it exists; `KEY=value` lines), then the environment, for the
 * settings the Worker reads (worker/env.ts) only. Values are never printed, only names.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs, parseEnv } from "node:util";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from "wrangler";

const root = new URL("..", import.meta.url).pathname;
const WRANGLER = join(root, "node_modules/wrangler/bin/wrangler.js");

const USAGE = `usage: npm run serve -- [--port N] [--ip ADDR] [--data DIR] [--vars FILE]
  --port N      port to listen on (default 8787)
  --ip ADDR     address to listen on (default 127.0.0.1: put your TLS proxy in front)
  --data DIR    where the Durable Objects and recordings are stored (default .porthole/data)
  --vars FILE   vars and secrets, KEY=value lines (default .dev.vars, when it exists)`;

function parse() {
  try {
    return parseArgs({
      options: {
        port: { type: "string", default: "8787" },
        ip: { type: "string", default: "127.0.0.1" },
        data: { type: "string", default: join(root, ".porthole/data") },
        vars: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}
const args = parse();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port: not a port number: ${args.port}\n${USAGE}`);
  process.exit(2);
}
// Relative paths are the caller's: npm runs scripts in the checkout, and says where it was called (INIT_CWD).
const cwd = process.env.INIT_CWD ?? process.cwd();
const data = resolve(cwd, args.data);

/** The settings the Worker reads (the optional strings of `interface Env`, worker/env.ts). */
function settingNames(): string[] {
  const source = readFileSync(join(root, "worker/env.ts"), "utf8");
  const body = /export interface Env extends Bindings \{([\s\S]*?)\n\}/.exec(source)?.[1] ?? "";
  const names = [...body.matchAll(/^\s+([A-Z][A-Z0-9_]*)\?: string;/gm)].map((m) => m[1]!);
  // Read from the source so the list cannot drift; a reformatted env.ts must fail here, not
  // silently drop every setting from the environment.
  if (!names.includes("ADMIN_PASSWORD")) {
    console.error("serve: could not read the setting names from worker/env.ts (interface Env): update settingNames() in scripts/serve.ts");
    process.exit(1);
  }
  return names;
}

function vars(config: { vars: Record<string, unknown> }): { values: Record<string, string>; from: string[] } {
  const values: Record<string, string> = {};
  const from: string[] = [];
  for (const [k, v] of Object.entries(config.vars)) values[k] = typeof v === "string" ? v : JSON.stringify(v);
  if (Object.keys(config.vars).length) from.push("wrangler.toml");
  const file = args.vars ? resolve(cwd, args.vars) : join(root, ".dev.vars");
  if (args.vars || existsSync(file)) {
    if (!existsSync(file)) {
      console.error(`--vars: no such file: ${file}`);
      process.exit(2);
    }
    const parsed = parseEnv(readFileSync(file, "utf8"));
    Object.assign(values, parsed);
    if (Object.keys(parsed).length) from.push(file);
  }
  const env = settingNames().filter((k) => process.env[k] !== undefined);
  for (const k of env) values[k] = process.env[k]!;
  if (env.length) from.push("the environment");
  return { values, from };
}

/** The Worker as `wrangler deploy` uploads it (the [build] command builds the pages first). */
function bundle(outdir: string): string {
  const r = spawnSync(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", outdir], {
    cwd: root,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    encoding: "utf8",
  });
  if (r.status !== 0) {
    console.error(`bundling the Worker failed (wrangler deploy --dry-run):\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
  return join(outdir, "index.js");
}

const config = unstable_readConfig({ config: join(root, "wrangler.toml") });
// Rules locate non-JS modules in the sources; the bundle is one module (and Miniflare 5 refuses them).
const { modulesRules: _rules, ...workerOptions } = unstable_getMiniflareWorkerOptions(config).workerOptions;
const settings = vars(config);
if (!settings.values.ADMIN_USERNAME || !settings.values.ADMIN_PASSWORD) {
  console.warn("!! ADMIN_USERNAME and ADMIN_PASSWORD are not both set: nobody can sign in (docs/deploy.md, Self-hosted edge).");
}

const build = mkdtempSync(join(tmpdir(), "porthole-serve-"));
process.once("exit", () => rmSync(build, { recursive: true, force: true }));
const scriptPath = bundle(build);
mkdirSync(data, { recursive: true });

const mf = new Miniflare(
  convertV4MiniflareOptions({
    host: args.ip,
    port,
    // The same layout as `wrangler dev --persist-to <data>`: <data>/v3/do (the objects' SQLite), <data>/v3/r2.
    resourcePersistencePath: join(data, "v3"),
    resourceTmpPath: join(build, "tmp"),
    log: new Log(LogLevel.WARN),
    // No request log: old-style share-link paths carry their secret (docs/deploy.md, What stays private).
    logRequests: false,
    // Placeholder request.cf, never fetched from Cloudflare.
    cf: false,
    // Development aids wrangler dev turns on: none of them in an edge people rely on.
    unsafeObservability: false,
    unsafeLocalExplorer: false,
    unsafeTriggerHandlers: false,
    unsafeInspectDurableObjects: false,
    telemetry: { enabled: false },
    workers: [
      {
        ...workerOptions,
        name: config.name,
        modules: true,
        scriptPath,
        modulesRoot: build,
        bindings: settings.values,
      },
    ],
  }),
);

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await mf.dispose().catch(() => {});
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

try {
  const url = await mf.ready;
  console.log(`Porthole edge (workerd, no dev proxy) on ${url.origin} (listening on ${args.ip})`);
  console.log(`  state: ${data}`);
  console.log(`  vars and secrets: ${Object.keys(settings.values).sort().join(", ") || "none"} (from ${settings.from.join(", ") || "nowhere"})`);
} catch (err) {
  console.error(`the edge did not start: ${(err as Error).message}`);
  await stop(1);
}
