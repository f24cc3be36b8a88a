/**
 * A real edge with its own Durable Object storage: the one place that knows its command lines and
 * environment (tests, `npm start` and the benchmark all start it here). Two ways to run it:
 * `startEdge`, `wrangler dev` (its proxy workerd in front of the runtime), and `startServedEdge`,
 * `npm run serve` (scripts/serve.ts: the deployed bundle on one workerd, no proxy).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type Proc, start, waitFor } from "./processes.ts";

const WRANGLER = new URL("../../node_modules/wrangler/bin/wrangler.js", import.meta.url).pathname;
const SERVE = new URL("../../scripts/serve.ts", import.meta.url).pathname;

export interface Edge {
  url: string;
  username: string;
  password: string;
  proc: Proc;
  stop(): Promise<void>;
}

export interface EdgeOptions {
  /**
   * Leave wrangler's local observability collector on (it traces every Durable Object event into
   * SQLite: it halves the relay's throughput, docs/benchmarks.md, and production has no such
   * thing). Off by default; the benchmark's "wrangler defaults" variant turns it on.
   */
  localObservability?: boolean;
  /** Default: a free loopback port. */
  port?: number;
  /** Where the Durable Object storage goes (removed on stop). Default: a fresh directory in tmpdir. */
  persistTo?: string;
  /** Leave `persistTo` in place on stop: a later edge on the same directory finds its state. */
  keepState?: boolean;
  username?: string;
  password?: string;
  /** Print wrangler's output with this prefix. */
  echo?: string;
  /** More vars for the Worker (wrangler.toml's [vars] and .dev.vars otherwise). */
  vars?: Record<string, string>;
}

/** What both kinds of edge take the same way: a port, a state directory, the admin's secrets. */
async function placed(o: Omit<EdgeOptions, "localObservability">) {
  return {
    port: o.port ?? (await freePort()),
    state: o.persistTo ?? mkdtempSync(join(tmpdir(), "porthole-edge-")),
    username: o.username ?? "admin",
    password: o.password ?? `pw-${Math.random().toString(36).slice(2)}`,
    vars: o.vars ?? {},
  };
}

export async function startEdge({ localObservability = false, keepState = false, echo, ...options }: EdgeOptions = {}): Promise<Edge> {
  const { port, state, username, password, vars } = await placed(options);
  const inspector = await freePort();
  const proc = start(
    process.execPath,
    [
      WRANGLER,
      "dev",
      "--ip", "127.0.0.1",
      "--port", String(port),
      "--inspector-port", String(inspector),
      "--persist-to", state,
      "--var", `ADMIN_USERNAME:${username}`,
      "--var", `ADMIN_PASSWORD:${password}`,
      ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
      "--show-interactive-dev-session=false",
    ],
    { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", X_LOCAL_OBSERVABILITY: String(localObservability), CI: "true" },
    { echo },
  );
  return ready("wrangler dev", proc, port, username, password, keepState ? null : state, "SIGINT");
}

/**
 * `npm run serve` (scripts/serve.ts) on its own state directory: the bundle `wrangler deploy` would
 * upload, on one workerd (Miniflare's), with no dev proxy in front. The same options as `startEdge`
 * (not `localObservability`: it has no collector). Vars and secrets go in through the environment,
 * and never the checkout's `.dev.vars`.
 */
export async function startServedEdge({ keepState = false, echo, ...options }: Omit<EdgeOptions, "localObservability"> = {}): Promise<Edge> {
  const { port, state, username, password, vars } = await placed(options);
  const proc = start(
    process.execPath,
    [SERVE, "--ip", "127.0.0.1", "--port", String(port), "--data", state, "--vars", "/dev/null"],
    { ADMIN_USERNAME: username, ADMIN_PASSWORD: password, ...vars },
    { echo },
  );
  return ready("npm run serve", proc, port, username, password, keepState ? null : state, "SIGTERM");
}

async function ready(
  what: string,
  proc: Proc,
  port: number,
  username: string,
  password: string,
  removeOnStop: string | null,
  signal: NodeJS.Signals,
): Promise<Edge> {
  const url = `http://127.0.0.1:${port}`;
  await waitFor(what, async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined), 120_000, proc);
  return {
    url,
    username,
    password,
    proc,
    async stop() {
      await proc.stop(signal);
      if (removeOnStop) rmSync(removeOnStop, { recursive: true, force: true });
    },
  };
}
