/**
 * The paths the benchmark compares, started once for the whole run:
 *   direct       client ──TCP──▶ upstream
 *   websockify   client ──WS──▶ Debian's websockify ──TCP──▶ upstream
 *   porthole     client ──WS──▶ edge runtime (site object) ══WS══ connector ──TCP──▶ upstream: the
 *                production-like path, `npm run serve` (the deployed bundle on one workerd, its own socket)
 *   porthole-dev the same through `wrangler dev`'s public port, i.e. its proxy workerd in front of
 *                its runtime
 * Porthole's parts are the real ones, started with the project's test harness (`npm run serve` and
 * `wrangler dev`, each on its own storage, the real connector with --metrics). With
 * `--wrangler-defaults`, a diagnostic:
 *   porthole-defaults  a second `wrangler dev` with wrangler's local observability collector on
 * With the keys section, a real desktop too (Xvnc with an xterm), reached directly, through a
 * second websockify, and as the VM "xterm" of each Porthole site.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { ApiClient } from "../test/harness/api.ts";
import { startConnector } from "../test/harness/connector.ts";
import { startEdge, startServedEdge } from "../test/harness/edge.ts";
import { freePort, portAnswers, start, waitFor } from "../test/harness/processes.ts";
import { type Desktop, startDesktop } from "../test/harness/xvnc.ts";
import { type ClientKind, KIND, type Target } from "./rfb-conn.ts";
import { cmdline, comm, cpuSeconds, descendants, environ, listeningPorts, rss, runQueueSeconds, treeCpuSeconds, treeMemory } from "./procs.ts";

export type PathId = "direct" | "websockify" | "porthole" | "porthole-dev" | "porthole-defaults" | "porthole-deflate" | "porthole-recorded";
export const MAIN: PathId[] = ["direct", "websockify", "porthole", "porthole-dev"];

export const PATH_LABEL: Record<PathId, string> = {
  direct: "direct TCP",
  websockify: "websockify",
  porthole: "Porthole",
  "porthole-dev": "Porthole via wrangler dev",
  "porthole-defaults": "Porthole, wrangler defaults",
  "porthole-deflate": "Porthole, VIEWER_WS_COMPRESSION=on",
  "porthole-recorded": "Porthole, site recording: all",
};

export const WEBSOCKIFY = "/usr/bin/websockify";

export const HYPERVISOR = "bench";
export const VM = "upstream";

/** The synthetic upstream (bench/upstream.ts), its own process. */
export async function startUpstream() {
  const proc = start(process.execPath, [new URL("./upstream.ts", import.meta.url).pathname]);
  // It prints {"port":…} once listening.
  const { port } = await waitFor("the upstream", async () => JSON.parse(proc.output().split("\n")[0]!) as { port: number }, 10_000, proc);
  return {
    port,
    child: proc.child,
    counters: () =>
      new Promise<{ connections: number; open: number; sourceWritten: number; echoed: number }>((resolve, reject) => {
        const s = connect({ port, host: "127.0.0.1" }, () => s.write("T"));
        let text = "";
        s.on("data", (d) => (text += d.toString()));
        // After the RFB greeting every connection gets first.
        s.on("end", () => resolve(JSON.parse(text.slice(text.indexOf("{")))));
        s.on("error", reject);
      }),
    stop: () => void proc.stop(),
  };
}
export type Upstream = Awaited<ReturnType<typeof startUpstream>>;

/** Debian's websockify in front of the upstream. */
export async function startWebsockify(upstreamPort: number) {
  const port = await freePort();
  const proc = start(WEBSOCKIFY, [`127.0.0.1:${port}`, `127.0.0.1:${upstreamPort}`]);
  await waitFor("websockify", () => portAnswers(port), 20_000, proc);
  return {
    port,
    proc,
    /** The listener and its per-connection children (websockify forks one process per client). */
    memory: () => treeMemory(proc.child.pid!),
    processes: () => descendants(proc.child.pid!).length,
    stop: async () => void (await proc.stop("SIGTERM")),
  };
}
export type Websockify = Awaited<ReturnType<typeof startWebsockify>>;

/** A short command's standard output (for the report's header), or "" if it fails. */
export function spawnText(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: "utf8" });
  return r.error ? "" : `${r.stdout ?? ""}${r.stderr ?? ""}`.trim();
}

// ---- Porthole -----------------------------------------------------------------------------------

/**
 * An edge through the test harness. `served`: `npm run serve` (one workerd, the deployed bundle, no
 * collector: the production-like path). Otherwise `wrangler dev`, which the harness starts with
 * wrangler's local observability collector off (env X_LOCAL_OBSERVABILITY=false: it traces every
 * Durable Object event into a local SQLite store; production has no such collector in the process);
 * `observability: true` starts it with wrangler's default, the collector on: the "wrangler
 * defaults" variant.
 */
export async function startPortholeEdge({ served = false, observability = false, vars = {} }: { served?: boolean; observability?: boolean; vars?: Record<string, string> }) {
  // The scale section opens a thousand consoles as one user: the per-user cap is not what it measures.
  const edgeVars = { MAX_CONSOLES_PER_USER: "100000", ...vars };
  const edge = served ? await startServedEdge({ vars: edgeVars }) : await startEdge({ localObservability: observability, vars: edgeVars });
  const api = new ApiClient(edge.url);
  await api.signIn(edge.username, edge.password);
  /** The workerd processes the edge started (wrangler dev: its proxy and the runtime; served: the runtime): the edge's memory. */
  const workerdPids = () => descendants(edge.proc.child.pid!).filter((p) => comm(p) === "workerd");
  /** Which workerd runs the Worker (wrangler dev's other one is its proxy in front of it). */
  const runtimePid = (): number | undefined => (served ? workerdPids()[0] : workerdPids().find((p) => cmdline(p).includes("--inspector-addr")));
  const publicPort = Number(new URL(edge.url).port);
  /** http://127.0.0.1:<port> of the runtime's own entry socket, when it can be found (served: its only socket). */
  let runtimeUrl: string | null = served ? edge.url : null;
  for (const pid of served ? [] : workerdPids()) {
    for (const port of listeningPorts(pid)) {
      if (port === publicPort) continue;
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
        if (res.ok && (await res.text()).includes("ok")) runtimeUrl = `http://127.0.0.1:${port}`;
      } catch {}
    }
  }
  /** The Worker's JSON log lines by event (site.alarm, site.woke), counted as wrangler prints them. */
  const events: Record<string, number> = {};
  let partial = "";
  edge.proc.child.stdout!.on("data", (d: Buffer) => {
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      const m = /"event":"(site\.[a-z]+)"/.exec(line);
      if (m) events[m[1]!] = (events[m[1]!] ?? 0) + 1;
    }
  });
  return {
    edge,
    api,
    events,
    /** Sites with a connector on this edge: each has its own object and alarm. */
    sites: 0,
    memory: () => {
      const pids = workerdPids();
      return { processes: pids.length, rss: pids.reduce((a, p) => a + rss(p), 0), pss: 0 };
    },
    workerdPids,
    runtimePid,
    runtimeUrl,
    /** Whether wrangler's local observability collector runs (read from wrangler's environment; `npm run serve` has none). */
    collector: !served && (environ(edge.proc.child.pid!).X_LOCAL_OBSERVABILITY ?? "true") !== "false",
    stop: () => edge.stop(),
  };
}
export type PortholeEdge = Awaited<ReturnType<typeof startPortholeEdge>>;

/**
 * A site with its own connector serving the upstream (VM "upstream") and the desktop (VM "xterm").
 * `viaRuntime`: the connector and the consoles' sockets use the runtime's own socket, as in
 * production; otherwise wrangler's public port (its dev proxy).
 */
export async function startPortholeSite(edge: PortholeEdge, site: string, upstreamPort: number, desktopPort: number | null, viaRuntime: boolean) {
  if (viaRuntime && !edge.runtimeUrl) throw new Error("the workerd runtime's own socket was not found");
  const base = viaRuntime ? edge.runtimeUrl! : edge.edge.url;
  const token = await edge.api.createSite(site);
  const vms = [{ id: VM, address: `127.0.0.1:${upstreamPort}` }, ...(desktopPort ? [{ id: "xterm", address: `127.0.0.1:${desktopPort}` }] : [])];
  const connector = await startConnector({ edge: base, token, hypervisors: [{ name: HYPERVISOR, type: "vnc", vms }] });
  await edge.api.waitForVms(site, 30_000);
  edge.sites++;
  const publicWs = edge.edge.url.replace(/^http/, "ws");
  const baseWs = base.replace(/^http/, "ws");
  return {
    site,
    edge,
    connector,
    connectorPid: connector.proc.child.pid!,
    /** A fresh console: one POST /api/consoles, one single-use wsUrl. */
    async console(kind: ClientKind, vm = VM): Promise<Target> {
      const { wsUrl } = await edge.api.openConsole(site, HYPERVISOR, vm);
      return { kind: "ws", url: wsUrl.replace(publicWs, baseWs), ...KIND[kind] };
    },
    stop: async () => {
      edge.sites--;
      await connector.stop();
    },
  };
}
export type PortholeSite = Awaited<ReturnType<typeof startPortholeSite>>;

export function haveWebsockify(): boolean {
  return existsSync(WEBSOCKIFY);
}

// ---- the world: every path, started once ----------------------------------------------------------

export interface World {
  upstream: Upstream;
  websockify: Websockify;
  /** The keys section's desktop (an xterm running cat) and a websockify in front of it. */
  desktop?: Desktop & { websockify: Websockify };
  /** Porthole's paths. */
  sites: Partial<Record<PathId, PortholeSite>>;
  /** Every edge started, with its name: their output is checked at the end. */
  edges: [string, PortholeEdge][];
}

export async function startWorld(
  { defaults, desktop, deflate, recorded = false }: { defaults: boolean; desktop: boolean; deflate: boolean; recorded?: boolean },
  log: (...parts: unknown[]) => void,
): Promise<World> {
  const upstream = await startUpstream();
  const websockify = await startWebsockify(upstream.port);
  log(`upstream on 127.0.0.1:${upstream.port}, websockify on 127.0.0.1:${websockify.port}`);
  const w: World = { upstream, websockify, sites: {}, edges: [] };
  if (desktop) {
    const d = await startDesktop(640, 480, { name: "bench-keys" });
    // An xterm over the whole screen, echoing what is typed (the pointer over it gives it the keys).
    start("xterm", ["-display", `:${d.display}`, "-geometry", "100x34+0+0", "-e", "cat"]);
    w.desktop = { ...d, websockify: await startWebsockify(d.port) };
    log(`desktop on 127.0.0.1:${d.port} (Xvnc with an xterm running cat)`);
  }
  const edge = await startPortholeEdge({ served: true });
  w.edges.push(["the edge", edge]);
  log(`npm run serve edge on ${edge.edge.url}`);
  const dev = await startPortholeEdge({ observability: false });
  w.edges.push(["the wrangler dev edge", dev]);
  log(`wrangler dev edge on ${dev.edge.url} (runtime socket ${dev.runtimeUrl ?? "not found"})`);
  const dp = w.desktop?.port ?? null;
  w.sites.porthole = await startPortholeSite(edge, "bench", upstream.port, dp, true);
  w.sites["porthole-dev"] = await startPortholeSite(dev, "bench-dev", upstream.port, dp, false);
  if (recorded) {
    // The same edge and path as "porthole", on a site whose consoles are all recorded (docs/recording.md):
    // the throughput section measures what recording costs the edge and whether it slows the viewer.
    w.sites["porthole-recorded"] = await startPortholeSite(edge, "bench-recorded", upstream.port, null, true);
    const res = await edge.api.call("PATCH", "/api/sites/bench-recorded", { recording: "all" });
    if (res.status !== 200) throw new Error(`recording policy: ${res.status}`);
  }
  if (defaults) {
    const other = await startPortholeEdge({ observability: true });
    w.edges.push(["the wrangler-defaults edge", other]);
    w.sites["porthole-defaults"] = await startPortholeSite(other, "bench-defaults", upstream.port, null, false);
  }
  if (deflate) {
    // The edge refuses permessage-deflate by default (docs/deploy.md): the compression section
    // measures what turning it on costs, on a served edge of its own with the var set.
    const other = await startPortholeEdge({ served: true, vars: { VIEWER_WS_COMPRESSION: "on" } });
    w.edges.push(["the compression edge", other]);
    w.sites["porthole-deflate"] = await startPortholeSite(other, "bench-deflate", upstream.port, null, true);
  }
  log(`connectors ready for ${Object.keys(w.sites).join(", ")}`);
  return w;
}

/** Stops extra edges (a diagnostic, the compression edge) once no section needs them: they cost nothing after. */
export async function dropPaths(w: World, ...paths: PathId[]): Promise<void> {
  for (const path of paths) {
    const site = w.sites[path];
    delete w.sites[path];
    await site?.stop();
    await site?.edge.stop();
  }
}
export const dropDefaults = (w: World) => dropPaths(w, "porthole-defaults");
export const dropExtras = (w: World) => dropPaths(w, "porthole-defaults", "porthole-deflate");
/** The recorded site shares the main edge: only its connector stops. */
export async function dropRecorded(w: World): Promise<void> {
  const site = w.sites["porthole-recorded"];
  delete w.sites["porthole-recorded"];
  if (!site) return;
  // Whether the bucket kept up: complete recordings, or incomplete ones (the memory bound dropped records).
  const res = await site.edge.api.call<{ state: string; bytes: number }[]>("GET", "/api/recordings?site=bench-recorded");
  const states: Record<string, number> = {};
  for (const r of res.body) states[r.state] = (states[r.state] ?? 0) + 1;
  console.log(`[bench] recordings of the recorded lanes: ${JSON.stringify(states)}, ${res.body.reduce((a, r) => a + r.bytes, 0)} bytes kept`);
  await site.stop();
}

export async function stopWorld(w: World): Promise<void> {
  await Promise.allSettled(Object.values(w.sites).map((s) => s.stop()));
  await Promise.allSettled([...w.edges.map(([, e]) => e.stop()), w.websockify.stop(), w.desktop?.websockify.stop(), w.desktop?.stop()]);
  w.upstream.stop();
}

/** A fresh connection target for a path (Porthole: a fresh single-use console ticket). */
export function target(w: World, path: PathId, kind: ClientKind = "credit", vm: "upstream" | "xterm" = VM): Promise<Target> {
  const desk = vm === "xterm" ? w.desktop : undefined;
  if (vm === "xterm" && !desk) throw new Error("no desktop: the keys section starts it");
  if (path === "direct") return Promise.resolve({ kind: "tcp", port: desk?.port ?? w.upstream.port });
  // websockify knows no credit subprotocol: a credit client there is a plain one.
  const deflate = KIND[kind].deflate;
  if (path === "websockify") return Promise.resolve({ kind: "ws", url: `ws://127.0.0.1:${(desk?.websockify ?? w.websockify).port}/`, credit: false, deflate });
  return w.sites[path]!.console(kind, vm);
}

/** The processes of a path besides the client, by component. */
function components(w: World, path: PathId): Record<string, () => number[]> {
  const parts: Record<string, () => number[]> = { upstream: () => [w.upstream.child.pid!] };
  if (path === "websockify") parts.websockify = () => descendants(w.websockify.proc.child.pid!);
  const site = w.sites[path];
  if (site) {
    parts["edge runtime"] = () => {
      const pid = site.edge.runtimePid();
      return pid ? [pid] : [];
    };
    parts["edge proxy"] = () => site.edge.workerdPids().filter((p) => p !== site.edge.runtimePid());
    parts.connector = () => [site.connectorPid];
  }
  return parts;
}

/** CPU seconds per component of a path, read from /proc before and after a measurement. */
export function cpuMeter(w: World, path: PathId): () => Record<string, number> {
  const parts = components(w, path);
  const read = (k: string) =>
    k === "websockify" ? treeCpuSeconds(w.websockify.proc.child.pid!) : parts[k]!().reduce((a, p) => a + cpuSeconds(p), 0);
  const before = Object.fromEntries(Object.keys(parts).map((k) => [k, read(k)]));
  return () => Object.fromEntries(Object.keys(parts).map((k) => [k, read(k) - before[k]!]));
}

/** Seconds the relay's processes (main threads) spent waiting for a CPU during a measurement. */
export function runQueueMeter(w: World, path: PathId): () => number {
  const parts = components(w, path);
  delete parts.upstream;
  const read = () => Object.values(parts).reduce((a, f) => a + f().reduce((b, p) => b + runQueueSeconds(p), 0), 0);
  const before = read();
  return () => read() - before;
}

export interface MemoryProbe {
  /** Named memory figures in bytes. */
  read(): Promise<Record<string, number>>;
  /** The relay's idle state: no stream left (after closing everything). */
  settled(): Promise<boolean>;
}

export function memoryProbe(w: World, path: PathId): MemoryProbe {
  if (path === "websockify") {
    return {
      read: async () => {
        const m = w.websockify.memory();
        return { "websockify RSS": m.rss, "websockify PSS": m.pss, "websockify processes": m.processes };
      },
      settled: async () => w.websockify.processes() <= 1,
    };
  }
  const site = w.sites[path];
  if (!site) return { read: async () => ({}), settled: async () => (await w.upstream.counters()).open === 0 };
  const runtimePid = site.edge.runtimePid();
  return {
    read: async () => {
      const m = await site.connector.metrics();
      return {
        "connector RSS": rss(site.connectorPid),
        "connector heap": m.nodejs_heap_used_bytes ?? 0,
        "connector external": m.nodejs_external_memory_bytes ?? 0,
        "connector buffered": m.porthole_connector_buffered_bytes ?? 0,
        "edge RSS": site.edge.memory().rss,
        "edge runtime RSS": runtimePid ? rss(runtimePid) : 0,
      };
    },
    settled: async () => ((await site.connector.metrics()).porthole_connector_streams ?? 0) === 0,
  };
}

/** Waits until the relay holds no stream; false if it still does after `ms`. */
export async function waitSettled(probe: MemoryProbe, ms = 60_000): Promise<boolean> {
  return waitFor("the relay to settle", async () => ((await probe.settled().catch(() => false)) ? true : undefined), ms).then(
    () => true,
    () => false,
  );
}
