/**
 * A real `wrangler dev` edge with its own Durable Object storage: the one place that knows its
 * command line and environment (tests, `npm start` and the benchmark all start it here).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type Proc, start, waitFor } from "./processes.ts";

const WRANGLER = new URL("../../node_modules/wrangler/bin/wrangler.js", import.meta.url).pathname;

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
  username?: string;
  password?: string;
  /** Print wrangler's output with this prefix. */
  echo?: string;
  /** More vars for the Worker (wrangler.toml's [vars] and .dev.vars otherwise). */
  vars?: Record<string, string>;
}

export async function startEdge({
  localObservability = false,
  port,
  persistTo,
  username = "admin",
  password = `pw-${Math.random().toString(36).slice(2)}`,
  echo,
  vars = {},
}: EdgeOptions = {}): Promise<Edge> {
  port ??= await freePort();
  const inspector = await freePort();
  const state = persistTo ?? mkdtempSync(join(tmpdir(), "porthole-edge-"));
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
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    "wrangler dev",
    async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined),
    120_000,
    proc,
  );
  return {
    url,
    username,
    password,
    proc,
    async stop() {
      await proc.stop("SIGINT");
      rmSync(state, { recursive: true, force: true });
    },
  };
}
