/** A real `wrangler dev` edge on a free loopback port, with its own Durable Object storage. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type Proc, start, waitFor } from "./processes.ts";

export interface Edge {
  url: string;
  username: string;
  password: string;
  proc: Proc;
  stop(): Promise<void>;
}

/**
 * `localObservability`: leave wrangler's local observability collector on (it traces every Durable
 * Object event into SQLite; off by default, as production has no such thing). The benchmark's
 * "wrangler defaults" variant turns it on.
 */
export async function startEdge({ localObservability = false } = {}): Promise<Edge> {
  const port = await freePort();
  const inspector = await freePort();
  const state = mkdtempSync(join(tmpdir(), "porthole-edge-"));
  const username = "admin";
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const proc = start(
    process.execPath,
    [
      "node_modules/wrangler/bin/wrangler.js",
      "dev",
      "--ip", "127.0.0.1",
      "--port", String(port),
      "--inspector-port", String(inspector),
      "--persist-to", state,
      "--var", `ADMIN_USERNAME:${username}`,
      "--var", `ADMIN_PASSWORD:${password}`,
      "--show-interactive-dev-session=false",
    ],
    // X_LOCAL_OBSERVABILITY: wrangler's local collector traces every Durable Object event (docs/benchmarks.md).
    { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", X_LOCAL_OBSERVABILITY: String(localObservability), CI: "true" },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    "wrangler dev",
    async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined),
    90_000,
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
