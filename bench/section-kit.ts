/**
 * What the benchmark's sections share: the configuration of a run, each section's row, the
 * results file's shape, the `Section` interface, and small helpers for lanes and figures.
 */
import type { ClientKind } from "./rfb-conn.ts";
import type { PathId, World } from "./paths.ts";
import type { machine } from "./run.ts";
import { pairwise, percentile, type Summary, summarize } from "./stats.ts";

export const MiB = 1024 * 1024;
export const KiB = 1024;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
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
    /** Consoles of the capacity section's typical load, step by step until a fall-off (or the budget). */
    capacitySteps: quick ? [1, 10, 50, 200] : [1, 10, 100, 200, 400, 800],
    /** Bulk consoles at once in the capacity section's bulk lane. */
    capacityBulk: quick ? [1, 4] : [1, 4, 16],
    /** Each step: load running this long before its window, the window, the probe's round trips in it. */
    capacityWarmSeconds: 1,
    capacitySeconds: quick ? 4 : 5,
    capacityEchoSamples: quick ? 200 : 400,
    /** No further step starts once the lane has run this long (the section stays within ~3 minutes). */
    capacityBudgetSeconds: quick ? 50 : 90,
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

/** One step of the capacity section: `consoles` at once for a window, and what each process spent. */
export interface CapacityStep {
  consoles: number;
  opened: number;
  seconds: number;
  /** Bytes the recorded pace offered in the window over all consoles (NaN for bulk: unbounded). */
  offered: number;
  delivered: number;
  /** Typical load: each chunk's arrival in full after its due time (µs). */
  late: Percentiles | null;
  /** The probe console's keystroke echo (µs), or why it failed. */
  echo: Percentiles | null;
  echoError: string | null;
  /** CPU seconds in the window by process: clients, upstream, edge runtime, edge proxy, connector. */
  cpu: Record<string, number>;
  /** Seconds the relay's processes waited for a CPU in the window. */
  runQueue: number;
  /** The whole machine's busy share of all its cores in the window (others' work included). */
  machineBusy: number;
  /** The connector's WebSocket messages to the edge in the window. */
  connectorMessages: number;
  /** Memory before the consoles opened and at the end of the window (bytes; memoryProbe's names). */
  before: Record<string, number>;
  after: Record<string, number>;
  closed: number;
  firstClose: string | null;
  /** Why the step could not run at all. */
  error?: string;
  /** Seconds before the window: the relay letting go of the last step, tickets, opening. */
  setupSeconds?: { settle: number; tickets: number; open: number };
}
export interface CapacityRow {
  steps: CapacityStep[];
  /** Typical lane: bytes per second the recorded session offers one console. */
  rate?: number;
}

export type SectionName = "throughput" | "latency" | "keys" | "compression" | "cost" | "stall" | "scale" | "capacity";
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
  /** Absent in results saved before the section existed. */
  capacity?: Lanes<CapacityRow>;
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

export const has = (rows: unknown[] | undefined) => (rows?.length ?? 0) > 0;
/** Porthole's paths for latency and keys; the compression edge differs from the main one only for clients offering deflate. */
export const porthole = (w: World) => (Object.keys(w.sites) as PathId[]).filter((p) => p.startsWith("porthole") && p !== "porthole-deflate" && p !== "porthole-recorded");
export const split = (lane: string) => lane.split(":") as [PathId, ClientKind];
// The max by reduce: spreading a capacity step's ~100,000 samples into Math.max overflows the stack.
export const pct = (us: number[]): Percentiles => ({ p50: percentile(us, 50), p99: percentile(us, 99), max: us.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY) });
export const perGiB = (cpu: Record<string, number>, bytes: number) => Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / (bytes / 1024 ** 3)]));

/** Run-by-run ratio of two lanes' figure. */
export const ratioOf = <T>(lanes: Lanes<T>, a: string, b: string, f: (x: T) => number): Summary => summarize(pairwise(lanes[a], lanes[b], (x, y) => f(x) / f(y)));
