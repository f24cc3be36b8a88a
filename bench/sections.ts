/**
 * The benchmark's sections. Each is a name, its lanes (a path, or a path and a kind of client),
 * a setup, a measurement of one lane in one run, and a verdict against its target. The runner
 * interleaves lanes run by run (rotating their order), so machine noise hits them alike.
 */
import { STREAM_WINDOW_BYTES } from "../shared/protocol/limits.ts";
import { type BulkResult, ChildJob, type ClientKind, type Conn, type DownloadResult, type EchoResult, openEchoOnce, runJob, type StallResult, type Target } from "./client.ts";
import { cpuMeter, dropDefaults, dropExtras, memoryProbe, type PathId, runQueueMeter, target, waitSettled, type World } from "./paths.ts";
import { haveRecording, loadSegment } from "./recording.ts";
import type { machine } from "./run.ts";
import { median, pairwise, percentile, pick, type Summary, summarize } from "./stats.ts";

const MiB = 1024 * 1024;
const KiB = 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
export const log = (...parts: unknown[]) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...parts);

/** What each section measures how often and how much: a full run, or a quicker one. */
export function configFor(quick: boolean, o: { runs?: string; consoles?: string; defaults?: boolean }) {
  const runs = Number(o.runs ?? (quick ? 2 : 5));
  return {
    runs,
    throughputBytes: (quick ? 32 : 128) * MiB,
    echoSamples: quick ? 300 : 1000,
    echoWarmup: quick ? 30 : 100,
    keySamples: quick ? 40 : 100,
    keyRuns: Math.min(runs, quick ? 1 : 3),
    replayBytes: (quick ? 16 : 48) * MiB,
    compressionRuns: Math.min(runs, quick ? 1 : 3),
    /** The idle window sees at least two heartbeats and alarms (every 15 s); the busy ones are steady. */
    costIdleSeconds: quick ? 31 : 61,
    costSeconds: quick ? 5 : 20,
    scaleConsoles: Number(o.consoles ?? (quick ? 100 : 1000)),
    scaleRuns: Math.min(runs, quick ? 1 : 2),
    scaleConcurrency: 50,
    stallBytes: 512 * MiB,
    stallWarmBytes: 1 * MiB,
    /** Stalled clients at once: growth is reported per stalled stream, so allocator noise counts 1/n. */
    stallClients: 4,
    stallSeconds: quick ? 2 : 4,
    stallRuns: Math.min(runs, quick ? 1 : 2),
    /** The "wrangler defaults" diagnostic (a second wrangler dev with its collector on). */
    defaults: o.defaults ?? false,
  };
}
export type Config = ReturnType<typeof configFor>;

export interface ThroughputRow {
  mbs: number;
  cpuPerGiB: Record<string, number>;
  deflated: boolean;
  fences: number;
}
export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}
export interface LatencyRow {
  idle: Percentiles;
  load: Percentiles;
  neighbourMBs: number;
  /** Relay processes' time waiting for a CPU, per second of the loaded echo run. */
  runQueuePerSecond: number;
}
export interface CompressionRow {
  mbs: number;
  /** Bytes on the viewer's socket per console byte. */
  wireRatio: number;
  cpuPerGiB: Record<string, number>;
  deflated: boolean;
  /** A paced replay (scroll only): each chunk's delivery after it was due (µs). */
  late?: Percentiles;
}
export interface CostRow {
  seconds: number;
  bytes: number;
  connectorMessages: number;
  viewerMessages: number;
  /** Per site: the edge logs these for every object, and each site has its own. */
  alarms: number;
  wakes: number;
}
export interface ScaleRow {
  consoles: number;
  ok: number;
  failed: number;
  firstFailure: string | null;
  relayError?: string | null;
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
  upstreamWrote: number;
  baseline: Record<string, number>;
  stalledAt: Record<string, number>;
  peak: Record<string, number>;
  echo: { ok: boolean; p50?: number; p99?: number; error?: string };
  closed: string | null;
}

export type SectionName = "throughput" | "latency" | "keys" | "compression" | "cost" | "stall" | "scale";
/** Rows by lane ("porthole:plain", "scroll:deflate", …), each list in run order. */
export type Lanes<Row> = Record<string, Row[]>;

export interface Results {
  date: string;
  machine: ReturnType<typeof machine>;
  command: string;
  /** What kind of run: the duration target differs (a partial run has none). */
  run: "quick" | "full" | "partial";
  config: Config;
  sections: SectionName[];
  collector?: { main: boolean; defaults: boolean | null };
  recordedAt?: string;
  /** Each recorded segment's size and duration (its rate as recorded). */
  segments?: Record<string, { bytes: number; seconds: number }>;
  throughput: Lanes<ThroughputRow>;
  latency: Lanes<LatencyRow>;
  keys: Lanes<LatencyRow>;
  compression: Lanes<CompressionRow>;
  cost: Lanes<CostRow>;
  stall: Lanes<StallRow>;
  scale: Lanes<ScaleRow>;
  errors: string[];
  seconds: number;
}

export interface Section<Row> {
  name: SectionName;
  lanes(w: World, c: Config): string[];
  setup?(w: World): Promise<void>;
  runs(c: Config): number;
  measure(w: World, lane: string, c: Config): Promise<Row>;
  /** One line for the log. */
  line(row: Row): string;
}

const rotate = <T>(xs: T[], by: number) => xs.map((_, i) => xs[(i + by) % xs.length]!);

/**
 * Runs a group of sections for their runs (throughput and latency alternate run by run); in each
 * run every section measures every lane, in an order rotated from run to run.
 */
export async function runSections(sections: Section<unknown>[], w: World, c: Config, results: Results, afterRun: () => void): Promise<void> {
  if (sections.length === 0) return;
  for (const s of sections) await s.setup?.(w);
  for (let r = 0; r < Math.max(...sections.map((s) => s.runs(c))); r++) {
    for (const s of sections.filter((x) => r < x.runs(c))) {
      for (const lane of rotate(s.lanes(w, c), r)) {
        const what = `${s.name} run ${r + 1} ${lane}`;
        try {
          const row = await s.measure(w, lane, c);
          ((results[s.name] as Lanes<unknown>)[lane] ??= []).push(row);
          log(`${what}: ${s.line(row)}`);
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
/** Porthole's paths for latency and keys; the compression edge differs from the main one only for clients offering deflate. */
const porthole = (w: World) => (Object.keys(w.sites) as PathId[]).filter((p) => p.startsWith("porthole") && p !== "porthole-deflate");
const split = (lane: string) => lane.split(":") as [PathId, ClientKind];
const pct = (us: number[]): Percentiles => ({ p50: percentile(us, 50), p99: percentile(us, 99), max: Math.max(...us) });
const perGiB = (cpu: Record<string, number>, bytes: number) => Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / (bytes / 1024 ** 3)]));

const throughput: Section<ThroughputRow> = {
  name: "throughput",
  lanes: (w) => [
    "direct",
    "websockify:plain",
    "websockify:browser",
    ...porthole(w).flatMap((p) => [`${p}:credit`, `${p}:plain`, `${p}:browser`]),
    // What a browser gets where an operator turned compression on (VIEWER_WS_COMPRESSION=on).
    ...(w.sites["porthole-deflate"] ? ["porthole-deflate:browser"] : []),
  ],
  runs: (c) => c.runs,
  async measure(w, lane, c) {
    const [path, kind] = split(lane);
    const t = await target(w, path, kind ?? "plain");
    const meter = cpuMeter(w, path);
    const d = await runJob<DownloadResult>({ kind: "download", target: t, bytes: c.throughputBytes });
    // websockify's per-connection child exits with the connection: let the listener reap it.
    if (path === "websockify") await sleep(300);
    return { mbs: d.bytes / d.seconds / 1e6, cpuPerGiB: perGiB({ client: d.cpu, ...meter() }, d.bytes), deflated: d.deflated, fences: d.fences };
  },
  line: (row) => `${row.mbs.toFixed(0)} MB/s${row.deflated ? " (deflate)" : ""}${row.fences ? `, ${row.fences} fences answered` : ""}`,
};

/** Run-by-run ratio of two lanes' figure. */
export const ratioOf = <T>(lanes: Lanes<T>, a: string, b: string, f: (x: T) => number): Summary => summarize(pairwise(lanes[a], lanes[b], (x, y) => f(x) / f(y)));

async function echoP(t: Target, c: Config): Promise<Percentiles> {
  return pct((await runJob<EchoResult>({ kind: "echo", target: t, samples: c.echoSamples, warmup: c.echoWarmup })).us);
}

/** Runs `probe` while a neighbour downloads flat out through the same relay. */
async function besideBulk<T>(w: World, path: PathId, probe: () => Promise<T>): Promise<{ value: T; neighbourMBs: number; runQueuePerSecond: number }> {
  const bulk = new ChildJob<BulkResult>({ kind: "bulk", target: await target(w, path) });
  try {
    await bulk.event("started");
    await sleep(500); // let the neighbour reach full speed
    const waited = runQueueMeter(w, path);
    const t0 = process.hrtime.bigint();
    const value = await probe();
    const runQueuePerSecond = waited() / seconds(t0);
    const b = await bulk.stop();
    return { value, neighbourMBs: b.bytes / b.seconds / 1e6, runQueuePerSecond };
  } finally {
    bulk.kill();
  }
}

const latency: Section<LatencyRow> = {
  name: "latency",
  lanes: (w) => ["direct", "websockify", ...porthole(w)],
  runs: (c) => c.runs,
  async measure(w, lane, c) {
    const path = lane as PathId;
    const idle = await echoP(await target(w, path), c);
    const echoTarget = await target(w, path);
    const { value: load, ...rest } = await besideBulk(w, path, () => echoP(echoTarget, c));
    return { idle, load, ...rest };
  },
  line: (row) => `echo p50 ${row.idle.p50.toFixed(0)} µs idle; p99 ${row.load.p99.toFixed(0)} µs while the neighbour got ${row.neighbourMBs.toFixed(0)} MB/s`,
};

const keys: Section<LatencyRow> = {
  name: "keys",
  lanes: (w) => ["direct", "websockify", ...porthole(w)],
  setup: dropDefaults,
  runs: (c) => c.keyRuns,
  async measure(w, lane, c) {
    const path = lane as PathId;
    const probe = async () => pct((await runJob<EchoResult>({ kind: "keys", target: await target(w, path, "credit", "xterm"), samples: c.keySamples })).us);
    const idle = await probe();
    const { value: load, ...rest } = await besideBulk(w, path, probe);
    return { idle, load, ...rest };
  },
  line: (row) => `key to pixels p50 ${row.idle.p50.toFixed(0)} µs idle, p99 ${row.load.p99.toFixed(0)} µs beside ${row.neighbourMBs.toFixed(0)} MB/s`,
};

/** What a compression lane replays: a recorded segment, or the synthetic source's random pixels. */
export const STREAMS = ["scroll", "region", "random"] as const;
const compression: Section<CompressionRow> = {
  name: "compression",
  // The idle segment has no bytes: nothing to compress (the report says so).
  lanes: () => STREAMS.flatMap((s) => [`${s}:deflate`, `${s}:off`]),
  runs: (c) => c.compressionRuns,
  async setup(w) {
    await dropDefaults(w);
    if (!haveRecording()) throw new Error("no recording");
    if (!w.sites["porthole-deflate"]) throw new Error("no edge with VIEWER_WS_COMPRESSION=on");
  },
  async measure(w, lane, c) {
    const [stream, mode] = lane.split(":") as [(typeof STREAMS)[number], string];
    // Offering deflate or not, to an edge that accepts the offer (VIEWER_WS_COMPRESSION=on).
    const t = async () => ({ ...(await target(w, "porthole-deflate", "credit")), deflate: mode === "deflate" }) as Target;
    const first = await t(); // the ticket's request before the meter starts
    const meter = cpuMeter(w, "porthole-deflate");
    const d =
      stream === "random"
        ? await runJob<DownloadResult>({ kind: "download", target: first, bytes: c.replayBytes })
        : await runJob<DownloadResult>({ kind: "replay", target: first, segment: stream, bytes: c.replayBytes });
    const row: CompressionRow = { mbs: d.bytes / d.seconds / 1e6, wireRatio: d.wire / d.bytes, cpuPerGiB: perGiB({ client: d.cpu, ...meter() }, d.bytes), deflated: d.deflated };
    if (stream === "scroll") {
      const p = await runJob<DownloadResult>({ kind: "replay", target: await t(), segment: stream, bytes: loadSegment(stream).bytes.length, paced: true });
      row.late = pct(p.lateUs!);
    }
    return row;
  },
  line: (row) =>
    `${row.mbs.toFixed(0)} MB/s, wire ${(row.wireRatio * 100).toFixed(0)}%, edge runtime ${(row.cpuPerGiB["edge runtime"] ?? 0).toFixed(2)} CPU-s/GiB` +
    (row.late ? `, paced p99 ${row.late.p99.toFixed(0)} µs late` : ""),
};

/** The console hour at this rate (bytes per second) for the cost model. */
export const COST_RATE = 1e6;
const cost: Section<CostRow> = {
  name: "cost",
  // "site": a connector and no console (what every site costs); "idle": one console, nothing moving.
  lanes: () => ["site", "idle", "credit", "plain"],
  setup: dropExtras,
  runs: () => 1,
  async measure(w, lane, c) {
    const site = w.sites.porthole!;
    const edge = site.edge;
    const job =
      lane === "site"
        ? null
        : new ChildJob<BulkResult>({ kind: "bulk", target: await target(w, "porthole", lane === "plain" ? "plain" : "credit"), request: lane === "idle" ? "E" : `P${COST_RATE}` });
    try {
      await job?.event("started");
      const [m0, e0, t0] = [await site.connector.metrics(), { ...edge.events }, process.hrtime.bigint()];
      await sleep((lane === "site" || lane === "idle" ? c.costIdleSeconds : c.costSeconds) * 1000);
      const [m1, e1, s] = [await site.connector.metrics(), { ...edge.events }, seconds(t0)];
      const b = (await job?.stop()) ?? { bytes: 0, sent: 0 };
      // The edge's lines are counted for all its sites: with no console anywhere, per site; with
      // one console, all of them are that console's site's (the other sites are idle: no alarm).
      const count = (k: string) => ((e1[k] ?? 0) - (e0[k] ?? 0)) / (lane === "site" ? Math.max(1, edge.sites) : 1);
      const sent = "porthole_connector_messages_sent_total";
      return { seconds: s, bytes: b.bytes, connectorMessages: (m1[sent] ?? Number.NaN) - (m0[sent] ?? Number.NaN), viewerMessages: b.sent, alarms: count("site.alarm"), wakes: count("site.woke") };
    } finally {
      job?.kill();
    }
  },
  line: (row) => `${row.seconds.toFixed(0)} s: connector ${row.connectorMessages} messages, viewer ${row.viewerMessages}, alarms ${row.alarms}, wakes ${row.wakes}`,
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
export const connectorPerConsole = (sc: Lanes<ScaleRow>) =>
  pick(sc.porthole, (x) => Math.max(scaleDelta(x, "connector RSS", "before"), scaleDelta(x, "connector heap", "before") + scaleDelta(x, "connector external", "before")));
export const allOpened = (rows: ScaleRow[] | undefined) => (rows ?? []).every((x) => x.ok === x.consoles && x.failed === 0);

const scale: Section<ScaleRow> = {
  name: "scale",
  lanes: () => ["direct", "websockify", "porthole"],
  setup: dropExtras,
  runs: (c) => c.scaleRuns,
  async measure(w, lane, c) {
    const path = lane as PathId;
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
  line: (row) => `${row.ok}/${row.consoles} consoles open and echoed in ${row.totalSeconds.toFixed(1)} s${row.firstFailure ? `; ${row.failed} failed, first: ${row.firstFailure}` : ""}`,
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
  lanes: () => ["direct", "websockify", "porthole", "porthole-dev"],
  setup: dropExtras,
  runs: (c) => c.stallRuns,
  async measure(w, lane, c) {
    const path = lane as PathId;
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
    const written0 = (await w.upstream.counters()).sourceWritten;
    const stalled: ChildJob<StallResult>[] = [];
    let echoJob: Promise<EchoResult> | null = null;
    try {
      for (let i = 0; i < k; i++) {
        stalled.push(new ChildJob<StallResult>({ kind: "stall", target: await target(w, path), bytes: c.stallBytes, warmBytes: c.stallWarmBytes }));
      }
      await Promise.all(stalled.map((s) => s.event("stalled")));
      // The other consoles: one echo probe on the same relay while the stalled streams sit there.
      echoJob = runJob<EchoResult>({ kind: "echo", target: await target(w, path), samples: 500, warmup: 20 });
      echoJob.catch(() => {});
      const peak: Record<string, number> = {};
      let last: Record<string, number> = {};
      let stalledAt: Record<string, number> | null = null;
      const onsetUntil = Date.now() + 500;
      const deadline = Date.now() + c.stallSeconds * 1000;
      while (Date.now() < deadline) {
        last = await probe.read();
        // Once every stream is stalled and the window in flight has landed: what grows after this
        // grows with the upstream's bytes (websockify's queue), not with the stall's onset.
        if (!stalledAt && Date.now() >= onsetUntil) stalledAt = last;
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
        upstreamWrote,
        baseline,
        stalledAt: stalledAt ?? last,
        peak,
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
  line: (row) =>
    `upstream wrote ${(row.upstreamWrote / row.clients / MiB).toFixed(1)} MiB per stalled client; peak growth per stalled stream: ` +
    Object.keys(row.peak).map((key) => `${key} +${(((row.peak[key] ?? 0) - (row.baseline[key] ?? 0)) / row.clients / KiB).toFixed(0)} KiB`).join(", "),
};

export const SECTIONS = { throughput, latency, keys, compression, cost, stall, scale } as Record<SectionName, Section<unknown>>;
/** In the order they run: the first two share their runs; each later one runs alone. */
export const ORDER: SectionName[][] = [["throughput", "latency"], ["keys"], ["compression"], ["cost"], ["stall"], ["scale"]];
