/**
 * The paths the benchmark compares, started once for the whole run:
 *   direct      client ──TCP──▶ upstream
 *   websockify  client ──WS──▶ Debian's websockify ──TCP──▶ upstream
 *   porthole    client ──WS──▶ wrangler dev edge (site object) ══WS══ connector ──TCP──▶ upstream
 * Porthole's parts are the real ones, started with the project's test harness (`wrangler dev` on
 * its own storage, the real connector with --metrics).
 *
 * Two diagnostic variants of the Porthole path explain where its time goes (see docs/benchmarks.md):
 *   porthole-runtime   the same edge, but client and connector talk to the workerd runtime's own
 *                      socket, skipping the proxy workerd that `wrangler dev` puts in front of it
 *   porthole-defaults  a second `wrangler dev` with its defaults, i.e. with wrangler's local
 *                      observability collector tracing every Durable Object event
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { ApiClient } from "../test/harness/api.ts";
import { type RunningConnector, startConnector } from "../test/harness/connector.ts";
import { type Edge, startEdge } from "../test/harness/edge.ts";
import { freePort, type Proc, start, waitFor } from "../test/harness/processes.ts";
import type { Target } from "./client.ts";
import { cmdline, comm, descendants, environ, listeningPorts, rss, type TreeMemory, treeMemory } from "./procs.ts";

export const WEBSOCKIFY = "/usr/bin/websockify";

export const HYPERVISOR = "bench";
export const VM = "upstream";

export interface Upstream {
  port: number;
  child: ChildProcess;
  counters(): Promise<{ connections: number; open: number; sourceWritten: number; echoed: number }>;
  stop(): void;
}

export async function startUpstream(): Promise<Upstream> {
  const child = spawn(process.execPath, [new URL("./upstream.ts", import.meta.url).pathname], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port));
    child.once("exit", (code) => reject(new Error(`upstream exited with ${code}`)));
  });
  return {
    port,
    child,
    counters: () =>
      new Promise((resolve, reject) => {
        const s = connect({ port, host: "127.0.0.1" }, () => s.write("T"));
        let text = "";
        s.on("data", (d) => (text += d.toString()));
        s.on("end", () => resolve(JSON.parse(text)));
        s.on("error", reject);
      }),
    stop: () => void child.kill("SIGTERM"),
  };
}

function portAnswers(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const s = connect({ port, host: "127.0.0.1" }, () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(undefined));
  });
}

export interface Websockify {
  port: number;
  proc: Proc;
  /** The listener and its per-connection children (websockify forks one process per client). */
  memory(): TreeMemory;
  processes(): number;
  stop(): Promise<void>;
}

export async function startWebsockify(upstreamPort: number): Promise<Websockify> {
  const port = await freePort();
  const proc = start(WEBSOCKIFY, [`127.0.0.1:${port}`, `127.0.0.1:${upstreamPort}`]);
  await waitFor("websockify", () => portAnswers(port), 20_000, proc);
  return {
    port,
    proc,
    memory: () => treeMemory(proc.child.pid!),
    processes: () => descendants(proc.child.pid!).length,
    async stop() {
      await proc.stop("SIGTERM");
    },
  };
}

/** A short command's standard output (for the report's header), or "" if it fails. */
export function spawnText(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: "utf8" });
  return r.error ? "" : `${r.stdout ?? ""}${r.stderr ?? ""}`.trim();
}

// ---- Porthole -----------------------------------------------------------------------------------

export interface PortholeEdge {
  edge: Edge;
  /** Whether wrangler's local observability collector runs (read from wrangler's environment). */
  collector: boolean;
  api: ApiClient;
  /** The workerd processes `wrangler dev` started (its proxy and the runtime): the edge's memory. */
  memory(): TreeMemory;
  workerdPids(): number[];
  /** Which workerd runs the Worker (the other is wrangler's proxy in front of it). */
  runtimePid(): number | undefined;
  /** http://127.0.0.1:<port> of the runtime's own entry socket, when it can be found. */
  runtimeUrl: string | null;
  stop(): Promise<void>;
}

/**
 * `wrangler dev` through the test harness, which turns wrangler's local observability collector off
 * (env X_LOCAL_OBSERVABILITY=false: it traces every Durable Object event into a local SQLite store;
 * production has no such collector in the process). `observability: true` starts it the same way
 * but with wrangler's default, the collector on: the "wrangler defaults" variant.
 */
export async function startPortholeEdge({ observability }: { observability: boolean }): Promise<PortholeEdge> {
  const edge = await startEdge({ localObservability: observability });
  const api = new ApiClient(edge.url);
  await api.signIn(edge.username, edge.password);
  const workerdPids = () => descendants(edge.proc.child.pid!).filter((p) => comm(p) === "workerd");
  const runtimePid = () => workerdPids().find((p) => cmdline(p).includes("--inspector-addr"));
  const publicPort = Number(new URL(edge.url).port);
  let runtimeUrl: string | null = null;
  for (const pid of workerdPids()) {
    for (const port of listeningPorts(pid)) {
      if (port === publicPort) continue;
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
        if (res.ok && (await res.text()).includes("ok")) runtimeUrl = `http://127.0.0.1:${port}`;
      } catch {}
    }
  }
  return {
    edge,
    api,
    memory: () => {
      const pids = workerdPids();
      return { processes: pids.length, rss: pids.reduce((a, p) => a + rss(p), 0), pss: 0 };
    },
    workerdPids,
    runtimePid,
    runtimeUrl,
    collector: (environ(edge.proc.child.pid!).X_LOCAL_OBSERVABILITY ?? "true") !== "false",
    stop: () => edge.stop(),
  };
}

export interface PortholeSite {
  site: string;
  edge: PortholeEdge;
  connector: RunningConnector;
  connectorPid: number;
  /** A fresh console: one POST /api/consoles, one single-use wsUrl. */
  console(credit?: boolean): Promise<Target>;
  stop(): Promise<number | null>;
}

/**
 * A site with its own connector serving the upstream. `viaRuntime`: the connector and the consoles'
 * sockets use the runtime's own socket instead of wrangler's public port (the diagnostic variant).
 */
export async function startPortholeSite(
  edge: PortholeEdge,
  site: string,
  upstreamPort: number,
  { viaRuntime = false } = {},
): Promise<PortholeSite> {
  if (viaRuntime && !edge.runtimeUrl) throw new Error("the workerd runtime's own socket was not found");
  const base = viaRuntime ? edge.runtimeUrl! : edge.edge.url;
  const token = await edge.api.createSite(site);
  const connector = await startConnector({
    edge: base,
    token,
    hypervisors: [{ name: HYPERVISOR, type: "vnc", vms: [{ id: VM, address: `127.0.0.1:${upstreamPort}` }] }],
  });
  await waitFor("the site's inventory", async () => {
    const res = await edge.api.call<unknown[]>("GET", `/api/sites/${site}/vms`);
    return res.status === 200 && Array.isArray(res.body) && res.body.length > 0 ? true : undefined;
  });
  const publicWs = edge.edge.url.replace(/^http/, "ws");
  const baseWs = base.replace(/^http/, "ws");
  return {
    site,
    edge,
    connector,
    connectorPid: connector.proc.child.pid!,
    async console(credit = true) {
      const { wsUrl } = await edge.api.openConsole(site, HYPERVISOR, VM);
      return { kind: "ws", url: wsUrl.replace(publicWs, baseWs), credit };
    },
    stop: () => connector.stop(),
  };
}

export function haveWebsockify(): boolean {
  return existsSync(WEBSOCKIFY);
}
