/**
 * The benchmark's sections. Each is a name, a setup (what the world must look like before its
 * runs), a measurement of one path in one run, and a verdict against its target. The runner
 * interleaves paths run by run (rotating their order), so machine noise hits them alike.
 */
import { STREAM_WINDOW_BYTES } from "../shared/protocol/limits.ts";
import { type BulkResult, ChildJob, type Conn, type DownloadResult, type EchoResult, openEchoOnce, runJob, type StallResult, type Target } from "./client.ts";
import { cpuMeter, dropVariant, MAIN, memoryProbe, type PathId, runQueueMeter, target, type Variant, waitSettled, type World } from "./paths.ts";
import type { HotFunction } from "./profile.ts";
import type { machine } from "./run.ts";
import { median, pairwise, percentile, pick, summarize } from "./stats.ts";

const MiB = 1024 * 1024;
const KiB = 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
export const log = (...parts: unknown[]) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...parts);

// ---- what a run records -------------------------------------------------------------------------

/** What each section measures how often and how much: a full run, or a quicker one. */
export function configFor(quick: boolean, o: { runs?: string; consoles?: string; stallClients?: string; variants?: boolean }) {
  return {
    runs: Number(o.runs ?? (quick ? 2 : 5)),
    throughputBytes: (quick ? 64 : 256) * MiB,
    echoSamples: quick ? 500 : 2000,
    echoWarmup: quick ? 50 : 200,
    fairnessSamples: quick ? 500 : 2000,
    scaleConsoles: Number(o.consoles ?? (quick ? 200 : 1000)),
    scaleRuns: quick ? 1 : 3,
    scaleConcurrency: 50,
    stallBytes: 512 * MiB,
    stallWarmBytes: 1 * MiB,
    /** Stalled clients at once: growth is reported per stalled stream, so allocator noise counts 1/n. */
    stallClients: Number(o.stallClients ?? 4),
    stallSeconds: quick ? 3 : 5,
    stallRuns: quick ? 1 : 3,
    variants: o.variants ?? !quick,
  };
}
export type Config = ReturnType<typeof configFor>;

export interface ThroughputRow {
  mbs: number;
  seconds: number;
  cpuPerGiB: Record<string, number>;
}
export interface LatencyRow {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}
export interface FairnessRow extends LatencyRow {
  neighbourMBs: number;
  neighbourClosed: string | null;
  /** Relay processes' time waiting for a CPU, per second of the echo run. */
  relayRunQueuePerSecond?: number;
}
export interface ScaleRow {
  consoles: number;
  ok: number;
  failed: number;
  firstFailure: string | null;
  /** What the relay itself logged about the failures, if anything. */
  relayError?: string | null;
  upstreamOpen: number;
  /** Porthole: the POST /api/consoles for every console, before any socket. */
  ticketSeconds: number;
  openSeconds: number;
  totalSeconds: number;
  openP50ms: number;
  openP99ms: number;
  before: Record<string, number>;
  afterTickets: Record<string, number>;
  after: Record<string, number>;
}
export interface StallRow {
  clients: number;
  received: number;
  upstreamWrote: number;
  /** Median of ten readings before the clients connected; and their minimum. */
  baseline: Record<string, number>;
  baselineMin?: Record<string, number>;
  /** Half a second after every client stalled; and the minimum from then to the end. */
  stalledAt: Record<string, number>;
  stalledMin?: Record<string, number>;
  peak: Record<string, number>;
  last: Record<string, number>;
  echo: { ok: boolean; p50?: number; p99?: number; error?: string };
  closed: string | null;
}


export interface Results {
  date: string;
  machine: ReturnType<typeof machine>;
  command: string;
  config: Config;
  sections: string[];
  runtimeFound?: boolean;
  /** Whether wrangler's local observability collector ran, per edge. */
  collector?: { main: boolean; defaults: boolean | null };
  throughput: Partial<Record<PathId, ThroughputRow[]>>;
  latency: Partial<Record<PathId, LatencyRow[]>>;
  fairness: Partial<Record<PathId, FairnessRow[]>>;
  scale: Partial<Record<PathId, ScaleRow[]>>;
  stall: Partial<Record<PathId, StallRow[]>>;
  profile?: {
    mbs: number;
    edge: { totalMs: number; idleMs: number; functions: HotFunction[] };
    connector: { totalMs: number; idleMs: number; functions: HotFunction[] };
    files: string[];
  };
  errors: string[];
  seconds: number;
}

export type SectionName = "throughput" | "latency" | "fairness" | "scale" | "stall";

export interface Section<Row> {
  name: SectionName;
  /** Diagnostic variants measured besides the main paths, when they run (`--variants`). */
  variants: Variant[];
  /** Runs after the sections before it, once, before its own runs. */
  setup?(w: World): Promise<void>;
  runs(c: Config): number;
  measure(w: World, path: PathId, c: Config): Promise<Row>;
  /** The log line for a measured row. */
  line(row: Row, path: PathId): string;
  /** Whether the target is met, from the saved results (null: not measured). */
  verdict(r: Results): boolean | null;
}

// ---- the runner -------------------------------------------------------------------------------------

function rotate<T>(list: readonly T[], by: number): T[] {
  const n = by % list.length;
  return [...list.slice(n), ...list.slice(0, n)];
}

/**
 * Runs sections that share their runs (throughput, latency and fairness alternate run by run); in
 * each run every section measures every path, in an order rotated from run to run.
 */
export async function runSections(sections: Section<unknown>[], w: World, c: Config, results: Results, afterRun: () => void): Promise<void> {
  if (sections.length === 0) return;
  for (const s of sections) await s.setup?.(w);
  for (let r = 0; r < sections[0]!.runs(c); r++) {
    for (const s of sections) {
      const paths = [...MAIN, ...s.variants.filter((v) => w.sites[v])];
      for (const path of rotate(paths, r)) {
        const what = `${s.name} run ${r + 1} ${path}`;
        try {
          const row = await s.measure(w, path, c);
          ((results[s.name] as Record<string, unknown[]>)[path] ??= []).push(row);
          log(`${what}: ${s.line(row, path)}`);
        } catch (err) {
          results.errors.push(`${what}: ${String(err)}`);
          log(`${what} FAILED: ${String(err)}`);
        }
      }
    }
    afterRun();
  }
}

// ---- sections ---------------------------------------------------------------------------------------

const has = (rows: unknown[] | undefined) => (rows?.length ?? 0) > 0;
const ms = (us: number) => us / 1000;

const throughput: Section<ThroughputRow> = {
  name: "throughput",
  variants: ["porthole-runtime", "porthole-defaults"],
  runs: (c) => c.runs,
  async measure(w, path, c) {
    const t = await target(w, path);
    const meter = cpuMeter(w, path);
    const d = await runJob<DownloadResult>({ kind: "download", target: t, bytes: c.throughputBytes });
    // websockify's per-connection child exits with the connection: let the listener reap it.
    if (path === "websockify") await sleep(300);
    const gib = d.bytes / 1024 ** 3;
    const cpu = { client: d.cpu, ...meter() };
    return { mbs: d.bytes / d.seconds / 1e6, seconds: d.seconds, cpuPerGiB: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / gib])) };
  },
  line: (row) => `${row.mbs.toFixed(0)} MB/s`,
  verdict: ({ throughput: t }) =>
    has(t.porthole) && has(t.websockify) && has(t.direct)
      ? ratio(t, "porthole", "websockify").median >= 1 && ratio(t, "porthole", "direct").median >= 0.5
      : null,
};

/** Run-by-run throughput ratio of two paths. */
export const ratio = (t: Results["throughput"], a: PathId, b: PathId) => summarize(pairwise(t[a], t[b], (x, y) => x.mbs / y.mbs));

const echoRow = (e: EchoResult): LatencyRow => ({ p50: percentile(e.us, 50), p99: percentile(e.us, 99), max: Math.max(...e.us), samples: e.us.length });

const latency: Section<LatencyRow> = {
  name: "latency",
  variants: ["porthole-runtime", "porthole-defaults"],
  runs: (c) => c.runs,
  async measure(w, path, c) {
    return echoRow(await runJob<EchoResult>({ kind: "echo", target: await target(w, path), samples: c.echoSamples, warmup: c.echoWarmup, size: 16 }));
  },
  line: (row) => `p50 ${row.p50.toFixed(0)} µs, p99 ${row.p99.toFixed(0)} µs, max ${row.max.toFixed(0)} µs`,
  verdict: ({ latency: l }) => (has(l.porthole) && has(l.websockify) ? addedP50(l).median <= 1 : null),
};

/** Porthole's p50 minus websockify's, run by run (ms). */
export const addedP50 = (l: Results["latency"]) => summarize(pairwise(l.porthole, l.websockify, (a, b) => ms(a.p50 - b.p50)));

const fairness: Section<FairnessRow> = {
  name: "fairness",
  variants: ["porthole-runtime"],
  runs: (c) => c.runs,
  async measure(w, path, c) {
    const bulk = new ChildJob<BulkResult>({ kind: "bulk", target: await target(w, path) });
    try {
      await bulk.event("started");
      await sleep(500); // let the neighbour reach full speed
      const echoTarget = await target(w, path);
      const waited = runQueueMeter(w, path);
      const t0 = process.hrtime.bigint();
      const e = await runJob<EchoResult>({ kind: "echo", target: echoTarget, samples: c.fairnessSamples, warmup: 50, size: 16 });
      const runQueue = waited() / seconds(t0);
      const b = await bulk.stop();
      return { ...echoRow(e), neighbourMBs: b.bytes / b.seconds / 1e6, neighbourClosed: b.closed, relayRunQueuePerSecond: runQueue };
    } finally {
      bulk.kill();
    }
  },
  line: (row) => `echo p99 ${row.p99.toFixed(0)} µs while the neighbour got ${row.neighbourMBs.toFixed(0)} MB/s`,
  verdict: ({ fairness: f }) =>
    has(f.porthole) && has(f.websockify)
      ? pick(f.porthole, (x) => ms(x.p99)).median <= 10 && median(pairwise(f.porthole, f.websockify, (a, b) => a.p99 - b.p99)) <= 0
      : null,
};

/** Runs `task` for 0..n-1 with `concurrency` in flight; returns what failed. */
async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await task(i).catch((err: unknown) => void failures.push(String(err)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
  return failures;
}

/** Growth per console in KiB between two of a scale row's memory readings. */
export const scaleDelta = (x: ScaleRow, key: string, from: "before" | "afterTickets") =>
  ((x.after[key] ?? Number.NaN) - (x[from][key] ?? Number.NaN)) / Math.max(1, x.ok) / KiB;
/** The connector's memory per idle console: RSS growth, or heap + external growth if larger. */
export const connectorPerConsole = (sc: Results["scale"]) =>
  pick(sc.porthole, (x) => Math.max(scaleDelta(x, "connector RSS", "before"), scaleDelta(x, "connector heap", "before") + scaleDelta(x, "connector external", "before")));
export const allOpened = (rows: ScaleRow[] | undefined) => (rows ?? []).every((x) => x.ok === x.consoles && x.failed === 0);

const scale: Section<ScaleRow> = {
  name: "scale",
  variants: [],
  setup: async (w) => {
    await dropVariant(w, "porthole-defaults");
    await dropVariant(w, "porthole-runtime");
  },
  runs: (c) => c.scaleRuns,
  async measure(w, path, c) {
    const probe = memoryProbe(w, path);
    await waitSettled(probe, 30_000);
    await sleep(1000);
    const before = await probe.read();
    const n = c.scaleConsoles;
    // Porthole: one POST /api/consoles per console first (single-use tickets, valid 60 s), so the
    // edge's memory for tickets and for idle sockets can be told apart.
    const porthole = path === "porthole";
    const targets: (Target | undefined)[] = new Array(n);
    const t0 = process.hrtime.bigint();
    const ticketFailures = porthole ? await pool(n, c.scaleConcurrency, async (i) => void (targets[i] = await target(w, path))) : [];
    const ticketSeconds = seconds(t0);
    const afterTickets = porthole ? await probe.read() : before;
    const conns: Conn[] = [];
    const openMs: number[] = [];
    const t1 = process.hrtime.bigint();
    const failures = await pool(n, c.scaleConcurrency, async (i) => {
      const s0 = process.hrtime.bigint();
      const t = targets[i] ?? (porthole ? undefined : await target(w, path));
      if (!t) throw new Error("no console ticket");
      conns.push(await openEchoOnce(t));
      openMs.push(seconds(s0) * 1000);
    });
    const openSeconds = seconds(t1);
    await sleep(3000); // idle
    const after = await probe.read();
    // websockify 0.10 serves each connection with select(), which cannot watch descriptors ≥ 1024.
    const wsfLog = path === "websockify" ? w.websockify.proc.output() : "";
    const relayError =
      wsfLog.match(/handler exception: (filedescriptor out of range in select\(\))/)?.[1] ?? wsfLog.match(/handler exception: ([^\n]+)/)?.[1] ?? null;
    const row: ScaleRow = {
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
    for (const conn of conns) conn.close();
    if (!(await waitSettled(probe))) log(`scale ${path}: the relay did not let go of every console within 60 s`);
    return row;
  },
  line: (row, path) => {
    const perConsole = Object.keys(row.after)
      .filter((k) => !k.endsWith("processes") && k !== "connector buffered")
      .map((k) => `${k} ${(((row.after[k] ?? 0) - (row.afterTickets[k] ?? 0)) / Math.max(1, row.ok) / KiB).toFixed(1)} KiB`)
      .join(", ");
    return (
      `${row.ok}/${row.consoles} consoles open and echoed in ${row.totalSeconds.toFixed(1)} s` +
      (path === "porthole" ? ` (${row.ticketSeconds.toFixed(1)} s for the tickets, ${row.openSeconds.toFixed(1)} s for the sockets)` : "") +
      (perConsole ? `; per idle console ${perConsole}` : "") +
      (row.firstFailure ? `; ${row.failed} failed, first: ${row.firstFailure}` : "")
    );
  },
  verdict: ({ scale: sc }) => (has(sc.porthole) ? allOpened(sc.porthole) && connectorPerConsole(sc).median <= 64 : null),
};

/** Peak growth over the stall per stalled stream (KiB). */
export const stallGrowth = (rows: StallRow[] | undefined, key: string, from: "baseline" | "stalledAt" = "baseline") =>
  pick(rows, (x) => ((x.peak[key] ?? Number.NaN) - (x[from][key] ?? Number.NaN)) / x.clients / KiB);
/** The stall target: connector and edge grow by at most one window per stalled stream, and the other console keeps working. */
export const stallMet = (rows: StallRow[] | undefined) =>
  has(rows)
    ? stallGrowth(rows, "connector RSS").median <= STREAM_WINDOW_BYTES / KiB &&
      stallGrowth(rows, "edge RSS").median <= STREAM_WINDOW_BYTES / KiB &&
      rows!.every((x) => x.echo.ok)
    : null;

/** Folds a reading into running minima or maxima, key by key. */
const fold = (into: Record<string, number>, from: Record<string, number>, f: (a: number, b: number) => number, start: number) => {
  for (const [key, v] of Object.entries(from)) into[key] = f(into[key] ?? start, v);
};

const stall: Section<StallRow> = {
  name: "stall",
  // Also without wrangler's dev proxy: the viewer's socket then ends in the runtime itself, as in production.
  variants: ["porthole-runtime"],
  setup: (w) => dropVariant(w, "porthole-defaults"),
  runs: (c) => c.stallRuns,
  async measure(w, path, c) {
    const k = c.stallClients;
    const probe = memoryProbe(w, path);
    // The traffic each stalled client sees before it stops (its warm-up) first goes through the
    // relay on other connections: allocator pools and heaps grow for traffic, not for the stall.
    await Promise.all(
      Array.from({ length: k }, async () => runJob<DownloadResult>({ kind: "download", target: await target(w, path), bytes: c.stallWarmBytes * 2 })),
    ).catch((err: unknown) => {
      throw new Error(`warm-up failed: ${String(err)}`);
    });
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
        stalled.push(new ChildJob<StallResult>({ kind: "stall", target: await target(w, path), bytes: c.stallBytes, warmBytes: c.stallWarmBytes }));
      }
      const events = await Promise.all(stalled.map((s) => s.event("stalled")));
      // The other consoles: one echo probe on the same relay while the stalled streams sit there.
      echoJob = runJob<EchoResult>({ kind: "echo", target: await target(w, path), samples: 500, warmup: 20, size: 16 });
      echoJob.catch(() => {});
      const peak: Record<string, number> = {};
      const stalledMin: Record<string, number> = {};
      let last: Record<string, number> = {};
      let stalledAt: Record<string, number> | null = null;
      const onsetUntil = Date.now() + 500;
      const deadline = Date.now() + c.stallSeconds * 1000;
      while (Date.now() < deadline) {
        last = await probe.read();
        // Once every stream is stalled and the window in flight has landed: what grows after this
        // grows with the upstream's bytes (websockify's queue), not with the stall's onset.
        if (!stalledAt && Date.now() >= onsetUntil) stalledAt = last;
        if (stalledAt) fold(stalledMin, last, Math.min, Number.POSITIVE_INFINITY);
        fold(peak, last, Math.max, Number.NEGATIVE_INFINITY);
        await sleep(100);
      }
      const upstreamWrote = (await w.upstream.counters()).sourceWritten - written0;
      const echo = await echoJob.then(
        (e) => ({ ok: true, p50: percentile(e.us, 50), p99: percentile(e.us, 99) }),
        (err: unknown) => ({ ok: false, error: String(err) }),
      );
      const ends = await Promise.all(stalled.map((s) => s.stop()));
      return {
        clients: k,
        received: events.reduce((a, ev) => a + Number(ev.received ?? 0), 0),
        upstreamWrote,
        baseline,
        baselineMin,
        stalledAt: stalledAt ?? last,
        stalledMin,
        peak,
        last,
        echo,
        closed: ends.map((e) => e.closed).find((x) => x !== null) ?? null,
      };
    } finally {
      for (const s of stalled) s.kill();
      await echoJob?.catch(() => {});
      const t0 = Date.now();
      const settled = await waitSettled(probe);
      if (path === "websockify") {
        log(`stall websockify: its stalled children ${settled ? `exited ${((Date.now() - t0) / 1000).toFixed(1)} s` : "were still alive 60 s"} after the clients left`);
      }
    }
  },
  line: (row) => {
    const growth = Object.keys(row.peak)
      .filter((key) => !key.endsWith("processes"))
      .map((key) => `${key} +${(((row.peak[key] ?? 0) - (row.baseline[key] ?? 0)) / row.clients / KiB).toFixed(0)} KiB`)
      .join(", ");
    return (
      `${row.clients} stalled clients; upstream wrote ${(row.upstreamWrote / row.clients / MiB).toFixed(1)} MiB per client; ` +
      `peak growth per stalled stream: ${growth || "n/a"}; other console echo ${row.echo.ok ? `p99 ${row.echo.p99!.toFixed(0)} µs` : `FAILED ${row.echo.error}`}`
    );
  },
  verdict: (r) => stallMet(r.stall.porthole),
};

export const SECTIONS = { throughput, latency, fairness, scale, stall } as Record<SectionName, Section<unknown>>;
/** In the order they run: the first three share their runs; each later one runs alone. */
export const ORDER: SectionName[][] = [["throughput", "latency", "fairness"], ["stall"], ["scale"]];
