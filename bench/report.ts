/** Turns the benchmark's raw results into docs/benchmarks.md and a hand-drawn SVG chart. */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import type { HotFunction } from "./profile.ts";
import { median, type Summary, summarize } from "./stats.ts";

export type PathId = "direct" | "websockify" | "porthole" | "porthole-runtime" | "porthole-defaults";

export const PATH_LABEL: Record<PathId, string> = {
  direct: "direct TCP",
  websockify: "websockify",
  porthole: "Porthole",
  "porthole-runtime": "Porthole, no dev proxy",
  "porthole-defaults": "Porthole, wrangler defaults",
};

export interface Machine {
  nproc: number;
  cpu: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  wrangler: string;
  workerd: string;
  websockify: string;
  python: string;
  commit: string;
}

interface ThroughputRow {
  mbs: number;
  seconds: number;
  cpuPerGiB: Record<string, number>;
}
interface LatencyRow {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}
interface FairnessRow extends LatencyRow {
  neighbourMBs: number;
  neighbourClosed: string | null;
  relayRunQueuePerSecond?: number;
}
interface ScaleRow {
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
interface StallRow {
  clients: number;
  received: number;
  upstreamWrote: number;
  /** Median of ten readings before the clients connected. */
  baseline: Record<string, number>;
  /** Minimum of those readings. */
  baselineMin?: Record<string, number>;
  /** Half a second after every client stalled. */
  stalledAt: Record<string, number>;
  /** Minimum from then to the end. */
  stalledMin?: Record<string, number>;

  peak: Record<string, number>;
  last: Record<string, number>;
  echo: { ok: boolean; p50?: number; p99?: number; error?: string };
  closed: string | null;
}

export interface Results {
  date: string;
  machine: Machine;
  command: string;
  config: {
    runs: number;
    throughputBytes: number;
    echoSamples: number;
    echoWarmup: number;
    fairnessSamples: number;
    scaleConsoles: number;
    scaleRuns: number;
    scaleConcurrency: number;
    stallBytes: number;
    stallWarmBytes: number;
    stallClients: number;
    stallSeconds: number;
    stallRuns: number;
    variants: boolean;
  };
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

const MiB = 1024 * 1024;
const KiB = 1024;
const WINDOW = 512 * KiB;

// ---- formatting -----------------------------------------------------------------------------------

function num(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return "–";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median (min–max)" for a set of runs; the range is left out for a single run. */
function fmt(s: Summary, digits = 0, unit = ""): string {
  if (s.runs === 0) return "–";
  const m = `${num(s.median, digits)}${unit}`;
  return s.runs > 1 ? `${m} (${num(s.min, digits)}–${num(s.max, digits)})` : m;
}

function ms(us: number): number {
  return us / 1000;
}

function pick<T>(rows: T[] | undefined, f: (row: T) => number): Summary {
  return summarize((rows ?? []).map(f));
}

type Verdict = "met" | "missed" | "not measured";
const mark = (v: Verdict) => (v === "met" ? "✅ met" : v === "missed" ? "❌ missed" : "– not measured");
const verdict = (ok: boolean | null): Verdict => (ok === null ? "not measured" : ok ? "met" : "missed");

// ---- the report -----------------------------------------------------------------------------------

export function writeReport(
  r: Results,
  out: { doc: string | null; chart: string; analysis: string },
): { markdown: string; table: string } {
  const t = r.throughput;
  const l = r.latency;
  const f = r.fairness;
  const sc = r.scale;
  const st = r.stall;
  const has = (rows: unknown[] | undefined) => (rows?.length ?? 0) > 0;

  const thr = (p: PathId) => pick(t[p], (x) => x.mbs);
  const ratio = (a: PathId, b: PathId) => summarize(pairwise(t[a], t[b], (x, y) => x.mbs / y.mbs));
  const lat = (p: PathId, k: "p50" | "p99" | "max") => pick(l[p], (x) => ms(x[k]));
  const fair = (p: PathId, k: "p50" | "p99" | "max") => pick(f[p], (x) => ms(x[k]));
  const addedP50 = summarize(pairwise(l.porthole, l.websockify, (a, b) => ms(a.p50 - b.p50)));
  const fairVsWsf = pairwise(f.porthole, f.websockify, (a, b) => a.p99 - b.p99);

  /** Growth per console in KiB between two of a scale row's memory readings. */
  const delta = (x: ScaleRow, key: string, from: "before" | "afterTickets", per: number) =>
    ((x.after[key] ?? Number.NaN) - (x[from][key] ?? Number.NaN)) / Math.max(1, per) / KiB;
  const perConsole = (p: PathId, key: string) => pick(sc[p], (x) => delta(x, key, "before", x.ok));
  /** The connector's memory per idle console: RSS growth, or heap + external growth if larger. */
  const connectorPerConsole = pick(sc.porthole, (x) =>
    Math.max(delta(x, "connector RSS", "before", x.ok), delta(x, "connector heap", "before", x.ok) + delta(x, "connector external", "before", x.ok)),
  );
  const edgePerSocket = pick(sc.porthole, (x) => delta(x, "edge RSS", "afterTickets", x.ok));
  const runtimePerSocket = pick(sc.porthole, (x) => delta(x, "edge runtime RSS", "afterTickets", x.ok));
  const edgePerTicket = pick(sc.porthole, (x) => ((x.afterTickets["edge RSS"] ?? Number.NaN) - (x.before["edge RSS"] ?? Number.NaN)) / x.consoles / KiB);
  const total = (p: PathId, key: string) => pick(sc[p], (x) => (x.after[key] ?? Number.NaN) / MiB);
  /** Peak growth over the stall per stalled stream (KiB). */
  const growth = (p: PathId, key: string, from: "baseline" | "stalledAt" = "baseline") =>
    pick(st[p], (x) => ((x.peak[key] ?? Number.NaN) - (x[from][key] ?? Number.NaN)) / x.clients / KiB);
  const allOpened = (p: PathId) => (sc[p] ?? []).every((x) => x.ok === x.consoles && x.failed === 0);
  const n = r.config.scaleConsoles;

  // Targets.
  const tThroughput =
    has(t.porthole) && has(t.websockify) && has(t.direct)
      ? ratio("porthole", "websockify").median >= 1 && ratio("porthole", "direct").median >= 0.5
      : null;
  const tLatency = has(l.porthole) && has(l.websockify) ? addedP50.median <= 1 : null;
  const tFair =
    has(f.porthole) && has(f.websockify) ? fair("porthole", "p99").median <= 10 && median(fairVsWsf) <= 0 : null;
  const tScale = has(sc.porthole) ? allOpened("porthole") && connectorPerConsole.median <= 64 : null;
  const tStallRuntime = has(st["porthole-runtime"])
    ? growth("porthole-runtime", "connector RSS").median <= WINDOW / KiB &&
      growth("porthole-runtime", "edge RSS").median <= WINDOW / KiB &&
      (st["porthole-runtime"] ?? []).every((x) => x.echo.ok)
    : null;
  const tStall = has(st.porthole)
    ? growth("porthole", "connector RSS").median <= WINDOW / KiB &&
      growth("porthole", "edge RSS").median <= WINDOW / KiB &&
      (st.porthole ?? []).every((x) => x.echo.ok)
    : null;

  const rows: string[][] = [];
  const row = (...cells: string[]) => rows.push(cells);
  const mbT = r.config.throughputBytes / MiB;
  if (has(t.direct) || has(t.porthole)) {
    row(`**Throughput**, one stream downloading ${mbT} MiB (MB/s)`, fmt(thr("direct")), fmt(thr("websockify")), fmt(thr("porthole")), "≥ websockify and ≥ 50% of direct", mark(verdict(tThroughput)));
    row("… Porthole ÷ websockify", "", "", fmt(ratio("porthole", "websockify"), 2), "≥ 1", "");
    row("… Porthole ÷ direct TCP", "", fmt(ratio("websockify", "direct"), 2), fmt(ratio("porthole", "direct"), 2), "≥ 0.5", "");
  }
  if (has(l.porthole)) {
    row(`**Latency**, 16-byte echo round trip, p50 (ms)`, fmt(lat("direct", "p50"), 3), fmt(lat("websockify", "p50"), 3), fmt(lat("porthole", "p50"), 3), "", "");
    row("… p99 (ms)", fmt(lat("direct", "p99"), 3), fmt(lat("websockify", "p99"), 3), fmt(lat("porthole", "p99"), 3), "", "");
    row("… max (ms)", fmt(lat("direct", "max"), 2), fmt(lat("websockify", "max"), 2), fmt(lat("porthole", "max"), 2), "", "");
    row("… Porthole p50 − websockify p50 (ms)", "", "", fmt(addedP50, 3), "≤ 1 ms", mark(verdict(tLatency)));
  }
  if (has(f.porthole)) {
    row("**Fairness**, echo p99 while a neighbour downloads flat out (ms)", fmt(fair("direct", "p99"), 2), fmt(fair("websockify", "p99"), 2), fmt(fair("porthole", "p99"), 2), "≤ 10 ms and ≤ websockify's", mark(verdict(tFair)));
    row("… echo p50 under load (ms)", fmt(fair("direct", "p50"), 3), fmt(fair("websockify", "p50"), 3), fmt(fair("porthole", "p50"), 3), "", "");
    row("… the neighbour's throughput meanwhile (MB/s)", fmt(pick(f.direct, (x) => x.neighbourMBs)), fmt(pick(f.websockify, (x) => x.neighbourMBs)), fmt(pick(f.porthole, (x) => x.neighbourMBs)), "", "");
    const rq = (p: PathId) => fmt(pick(f[p], (x) => (x.relayRunQueuePerSecond ?? Number.NaN) * 1000));
    row("… the relay's processes waiting for a CPU (ms per s, /proc/<pid>/schedstat)", "no relay", rq("websockify"), rq("porthole"), "", "");
    row("… runs where Porthole's p99 ≤ websockify's", "", "", `${fairVsWsf.filter((d) => d <= 0).length} of ${fairVsWsf.length}`, "", "");
  }
  if (has(sc.porthole)) {
    const opened = (p: PathId) => {
      if (!has(sc[p])) return "–";
      const rows = sc[p] ?? [];
      const why = rows.find((x) => x.ok < x.consoles)?.relayError ?? rows.find((x) => x.ok < x.consoles)?.firstFailure;
      return `${rows.map((x) => x.ok).join(", ")} of ${n}${why ? ` (the rest: \`${why.replace(/\|/g, "/").slice(0, 80)}\`)` : ""}`;
    };
    row(`**Scale**, ${n} concurrent consoles: opened and echoed`, opened("direct"), opened("websockify"), opened("porthole"), `all ${n}`, "");
    row(
      `… time to open all ${n}, ${r.config.scaleConcurrency} at a time (s)`,
      fmt(pick(sc.direct, (x) => x.totalSeconds), 1),
      fmt(pick(sc.websockify, (x) => x.totalSeconds), 1),
      has(sc.porthole)
        ? `${fmt(pick(sc.porthole, (x) => x.totalSeconds), 1)}: tickets ${fmt(pick(sc.porthole, (x) => x.ticketSeconds), 1)} + sockets ${fmt(pick(sc.porthole, (x) => x.openSeconds), 1)}`
        : "–",
      "",
      "",
    );
    row(
      "… one connection's open + first echo, p50 / p99 (ms)",
      `${fmt(pick(sc.direct, (x) => x.openP50ms), 1)} / ${fmt(pick(sc.direct, (x) => x.openP99ms), 1)}`,
      `${fmt(pick(sc.websockify, (x) => x.openP50ms), 1)} / ${fmt(pick(sc.websockify, (x) => x.openP99ms), 1)}`,
      `${fmt(pick(sc.porthole, (x) => x.openP50ms), 1)} / ${fmt(pick(sc.porthole, (x) => x.openP99ms), 1)}`,
      "",
      "",
    );
    row(
      `… relay memory with ${n} idle consoles (MiB)`,
      "no relay",
      `PSS ${fmt(total("websockify", "websockify PSS"))}, RSS ${fmt(total("websockify", "websockify RSS"))}`,
      `connector RSS ${fmt(total("porthole", "connector RSS"))}; edge (workerd) RSS ${fmt(total("porthole", "edge RSS"))}`,
      "",
      "",
    );
    row(
      "… connector memory per idle console (KiB)",
      "no relay",
      `PSS ${fmt(perConsole("websockify", "websockify PSS"))}, RSS ${fmt(perConsole("websockify", "websockify RSS"))}`,
      `${fmt(connectorPerConsole, 1)} (RSS ${fmt(perConsole("porthole", "connector RSS"), 1)}, JS heap ${fmt(perConsole("porthole", "connector heap"), 1)})`,
      "≤ 64 KiB",
      mark(verdict(tScale)),
    );
    row(
      "… edge memory per idle console socket (KiB, workerd RSS)",
      "",
      "",
      `${fmt(edgePerSocket, 1)}, of which the runtime ${fmt(runtimePerSocket, 1)} and wrangler's dev proxy the rest`,
      "",
      "",
    );
    row("… edge memory per console ticket issued (KiB, workerd RSS)", "", "", fmt(edgePerTicket, 1), "", "");
  }
  if (has(st.porthole)) {
    const wrote = (p: PathId) => fmt(pick(st[p], (x) => x.upstreamWrote / x.clients / MiB), 1);
    row(`**Stalled reader**: what the upstream pushed per stalled client, of ${r.config.stallBytes / MiB} MiB, over ${r.config.stallSeconds} s (MiB)`, wrote("direct"), wrote("websockify"), wrote("porthole"), "", "");
    /** The dev proxy's RSS: all workerd processes minus the runtime. */
    const proxy = (x: StallRow, at: "baseline" | "peak" | "stalledAt") => (x[at]["edge RSS"] ?? Number.NaN) - (x[at]["edge runtime RSS"] ?? Number.NaN);
    const proxyGrowth = (from: "baseline" | "stalledAt") => pick(st.porthole, (x) => (proxy(x, "peak") - proxy(x, from)) / x.clients / KiB);
    row(
      "… peak memory growth per stalled stream, from before the clients connected (KiB, RSS)",
      "kernel buffers only",
      fmt(growth("websockify", "websockify RSS")),
      `connector ${fmt(growth("porthole", "connector RSS"))}; edge ${fmt(growth("porthole", "edge RSS"))}: runtime ${fmt(growth("porthole", "edge runtime RSS"))}, wrangler's dev proxy ${fmt(proxyGrowth("baseline"))}`,
      "≤ 512 KiB each",
      mark(verdict(tStall)),
    );
    if (has(st["porthole-runtime"])) {
      row(
        "… the same without wrangler's dev proxy (viewers and connector on the runtime's own socket), from before (KiB, RSS)",
        "",
        "",
        `connector ${fmt(growth("porthole-runtime", "connector RSS"))}; edge ${fmt(growth("porthole-runtime", "edge RSS"))}: runtime ${fmt(growth("porthole-runtime", "edge runtime RSS"))}`,
        "≤ 512 KiB each",
        mark(verdict(tStallRuntime)),
      );
    }
    row(
      "… growth per stalled stream while stalled (from 0.5 s after the stall to the end, KiB, RSS)",
      "",
      fmt(growth("websockify", "websockify RSS", "stalledAt")),
      `connector ${fmt(growth("porthole", "connector RSS", "stalledAt"))}; edge runtime ${fmt(growth("porthole", "edge runtime RSS", "stalledAt"))}, dev proxy ${fmt(proxyGrowth("stalledAt"))}`,
      "",
      "",
    );
    row("… connector's own count of buffered bytes, peak per stalled stream (KiB)", "", "", fmt(pick(st.porthole, (x) => (x.peak["connector buffered"] ?? 0) / x.clients / KiB)), "≤ 512 KiB", "");
    const echoCell = (p: PathId) =>
      has(st[p]) ? `${(st[p] ?? []).filter((x) => x.echo.ok).length} of ${(st[p] ?? []).length} ok, p99 ${fmt(pick(st[p]?.filter((x) => x.echo.ok), (x) => ms(x.echo.p99!)), 2)} ms` : "–";
    row("… another console's echo meanwhile", echoCell("direct"), echoCell("websockify"), echoCell("porthole"), "keeps working", "");
  }
  const table = [
    "| figure | direct TCP | websockify | Porthole | target | verdict |",
    "|---|---|---|---|---|---|",
    ...rows.map((cells) => `| ${cells.join(" | ")} |`),
  ].join("\n");

  // CPU per GiB by component (throughput), the measured cost of each hop.
  const components = new Set<string>();
  for (const rowsOfPath of Object.values(t)) for (const x of rowsOfPath ?? []) for (const k of Object.keys(x.cpuPerGiB)) components.add(k);
  const order = ["client", "upstream", "websockify", "edge proxy", "edge runtime", "connector"].filter((c) => components.has(c));
  const cpuPaths = (Object.keys(t) as PathId[]).filter((p) => has(t[p]));
  const cpuTable = [
    `| path | MB/s | ${order.join(" | ")} | all processes |`,
    `|---|---|${order.map(() => "---").join("|")}|---|`,
    ...cpuPaths.map((p) => {
      const cells = order.map((c) => {
        const s = pick(t[p], (x) => x.cpuPerGiB[c] ?? Number.NaN);
        return s.runs ? num(s.median, 2) : "";
      });
      const all = pick(t[p], (x) => Object.values(x.cpuPerGiB).reduce((a, b) => a + b, 0));
      return `| ${PATH_LABEL[p]} | ${fmt(thr(p))} | ${cells.join(" | ")} | ${num(all.median, 2)} |`;
    }),
  ].join("\n");

  const variantRows = (["porthole", "porthole-runtime", "porthole-defaults"] as PathId[])
    .filter((p) => has(t[p]) || has(l[p]))
    .map(
      (p) =>
        `| ${PATH_LABEL[p]} | ${fmt(thr(p))} | ${fmt(lat(p, "p50"), 3)} | ${fmt(lat(p, "p99"), 3)} | ${fmt(lat(p, "max"), 2)} | ${has(f[p]) ? fmt(fair(p, "p99"), 2) : "not run"} |`,
    );

  writeFileSync(out.chart, chart(r));

  const m = r.machine;
  const c = r.config;
  const targetsList = [
    `- Throughput ≥ websockify's and ≥ 50% of direct TCP: **${mark(verdict(tThroughput))}**${has(t.porthole) ? ` (Porthole ${num(thr("porthole").median)} MB/s = ${num(ratio("porthole", "websockify").median, 2)}× websockify, ${num(ratio("porthole", "direct").median * 100)}% of direct TCP)` : ""}.`,
    `- Added latency p50 ≤ 1 ms over websockify: **${mark(verdict(tLatency))}**${has(l.porthole) ? ` (+${num(addedP50.median, 3)} ms)` : ""}.`,
    `- Fairness: echo p99 under a neighbour's bulk download ≤ 10 ms and no worse than websockify's in the same run: **${mark(verdict(tFair))}**${has(f.porthole) ? ` (${num(fair("porthole", "p99").median, 2)} ms vs websockify ${num(fair("websockify", "p99").median, 2)} ms; Porthole no worse in ${fairVsWsf.filter((d) => d <= 0).length} of ${fairVsWsf.length} runs)` : ""}.`,
    `- ${n} idle consoles through one connector, ≤ 64 KiB of connector memory each: **${mark(verdict(tScale))}**${has(sc.porthole) ? ` (${allOpened("porthole") ? "all opened" : "NOT all opened"}; ${num(connectorPerConsole.median, 1)} KiB of connector memory each)` : ""}.`,
    `- Stalled reader: connector and edge growth ≤ one window (512 KiB): **${mark(verdict(tStall))}**${has(st.porthole) ? ` (connector +${num(growth("porthole", "connector RSS").median)} KiB, edge +${num(growth("porthole", "edge RSS").median)} KiB, of which the runtime +${num(growth("porthole", "edge runtime RSS").median)} KiB)` : ""}${has(st["porthole-runtime"]) ? `; without wrangler's dev proxy: **${mark(verdict(tStallRuntime))}** (connector +${num(growth("porthole-runtime", "connector RSS").median)} KiB, edge +${num(growth("porthole-runtime", "edge RSS").median)} KiB)` : ""}.`,
  ].join("\n");

  const analysis = existsSync(out.analysis) ? readFileSync(out.analysis, "utf8").trim() : "";
  const profile = r.profile
    ? [
        "## CPU profile of this run",
        "",
        `Taken with \`--profile\` during one ${mbT} MiB Porthole download (${num(r.profile.mbs)} MB/s under the profiler). Self time per function; the .cpuprofile files open in Chrome DevTools.`,
        "",
        ...(["edge", "connector"] as const).flatMap((side) => {
          const p = r.profile![side];
          return [
            `**${side === "edge" ? "Edge (the Worker's isolate, via wrangler's inspector)" : "Connector (node --inspect)"}**: ${num(p.totalMs)} ms sampled, ${num(p.idleMs)} ms idle.`,
            "",
            "| self ms | share of busy | function | where |",
            "|---|---|---|---|",
            ...p.functions.map((fn) => `| ${num(fn.selfMs, 1)} | ${num(fn.share * 100, 1)}% | \`${fn.name}\` | ${fn.where} |`),
            "",
          ];
        }),
      ].join("\n")
    : "";

  const markdown = `# Benchmarks

Porthole puts two hops (the edge's site object and the connector) between a viewer and a console
where websockify puts one. This page is written by \`npm run bench\` (\`bench/\`), which runs the same
workloads through three paths in one process tree on one machine, interleaved run by run so that
machine noise hits them alike:

1. **direct TCP** to the upstream: the limit;
2. **websockify**: Debian's \`websockify\` in front of the upstream, what a user would otherwise pick;
3. **Porthole**: client → \`wrangler dev\` edge (Worker + site Durable Object) → connector (\`vnc\` upstream) → upstream.

The upstream is a synthetic TCP server (\`bench/upstream.ts\`, its own process): the first byte a
client sends picks *source n bytes* (random, incompressible), *echo* or *sink*. Clients
(\`bench/client.ts\`, one process per measuring client) speak WebSocket like noVNC: binary
messages, no compression. Porthole's clients use the credit subprotocol \`porthole.credit.v1\`
exactly as the console page does (a text message with the byte count after each 128 KiB
consumed); websockify's clients speak plain binary WebSocket.

Measured ${r.date.slice(0, 16).replace("T", " ")} UTC, ${num(r.seconds / 60, 1)} minutes.
Every figure is the **median of ${c.runs} runs (scale: ${c.scaleRuns}, stall: ${c.stallRuns}) (min–max across runs)** unless it says otherwise; latency
percentiles are taken within each run over ${num(c.echoSamples)} samples (after ${c.echoWarmup} warm-up round trips),
then the median across runs is reported. MB/s means 10⁶ bytes per second.

![Throughput, latency and fairness by path](${basename(out.chart)})

## Results

${table}

## Targets

${targetsList}

## Where the CPU goes

CPU seconds per GiB moved, per process, measured from \`/proc/<pid>/stat\` around each throughput
run (median of runs). On a ${m.nproc}-core machine every hop competes with the client and the
upstream for the same cores, so the sum is what caps a single stream.

${cpuTable}

${variantRows.length > 1 ? `### Diagnostic variants

Both run interleaved with the main paths, on the same upstream:

- **Porthole, no dev proxy**: the same edge and connector code, but the connector and the clients use
  the socket of the workerd process that runs the Worker, skipping the second workerd that
  \`wrangler dev\` puts in front of it (its dev proxy; production has no such hop).
- **Porthole, wrangler defaults**: a second \`wrangler dev\` left with its defaults, i.e. with wrangler's
  local observability collector on (\`X_LOCAL_OBSERVABILITY\`), which traces every Durable Object
  event (every WebSocket message) into a local SQLite store with an fsync per commit. The main
  Porthole path runs with \`X_LOCAL_OBSERVABILITY=false\` (as the test harness, \`npm run edge\` and
  \`npm start\` start wrangler): the collector is a development tool, and with it on the numbers
  measure wrangler, not Porthole.${r.collector ? ` This run: collector ${r.collector.main ? "**on**" : "off"} for the main path, ${r.collector.defaults === null ? "variant not run" : r.collector.defaults ? "on" : "**off**"} for the variant.` : ""}

| variant | throughput (MB/s) | echo p50 (ms) | echo p99 (ms) | echo max (ms) | echo p99 beside a bulk download (ms) |
|---|---|---|---|---|---|
${variantRows.join("\n")}
` : ""}
${analysis ? `${analysis}\n` : ""}
${profile}
## Method

- **Throughput**: one stream downloads ${mbT} MiB from the upstream's source mode; the clock runs from
  the request to the last byte. Porthole: one console per run (one \`POST /api/consoles\`).
- **Latency**: one connection in echo mode; 16 bytes out, wait for the 16 bytes back, repeat.
- **Fairness**: a second client downloads flat out (source mode, unbounded) through the same relay
  (for Porthole: the same connector and site object) from 0.5 s before until the end of ${num(c.fairnessSamples)} echo
  round trips on another connection.
- **Scale**: ${n} connections opened ${c.scaleConcurrency} at a time, each checked with one echo, then left idle 3 s; memory is
  read before and after (\`/proc\`: RSS of the connector process and of every workerd process
  \`wrangler dev\` started; for websockify, which forks a process per connection, RSS and PSS summed over
  the listener and its children: PSS counts shared pages once, RSS once per process). Porthole's time
  includes one \`POST /api/consoles\` per console (console tickets are single use). ${c.scaleRuns} run(s).
- **Stall**: ${c.stallClients} clients at once each read ${c.stallWarmBytes / MiB} MiB of a ${c.stallBytes / MiB} MiB source, then stop reading their
  sockets (and, for Porthole, stop returning credit). For ${c.stallSeconds} s memory is sampled every 100 ms; the peak
  minus a baseline taken before the clients connected, divided by ${c.stallClients}, is the growth per stalled stream
  (several streams make allocator noise count for less). Before the baseline the same warm-up
  traffic goes through the relay on other connections, so heaps and allocator pools have already
  grown for traffic. Meanwhile another client runs 500 echo round trips through the same relay.
  ${c.stallRuns} run(s).
- Paths rotate their order from run to run. Every path is warmed up with one 16 MiB download first.
- Raw results: \`npm run bench\` prints the path of a JSON file with every run.

## Machine

| | |
|---|---|
| CPU | ${m.cpu}, ${m.nproc} cores (\`nproc\`) |
| memory | ${num(m.memoryGiB, 1)} GiB |
| kernel | ${m.kernel} |
| Node | ${m.node} |
| wrangler / workerd | ${m.wrangler} / ${m.workerd} |
| websockify | ${m.websockify} (Debian package; Python ${m.python}) |
| Porthole commit | ${m.commit} |
| date | ${r.date} |

## Commands

\`\`\`sh
npm ci
sudo apt-get install -y websockify    # the peer; the benchmark checks for /usr/bin/websockify
npm run bench                          # everything, about 7 minutes on 2 cores; rewrites this page
npm run bench -- --quick               # fewer runs and smaller sizes, prints the table only
npm run bench -- --sections throughput,latency --runs 3    # pick sections: throughput, latency, fairness, scale, stall
npm run bench -- --profile             # also CPU-profile the edge and the connector during one download
\`\`\`

This run: \`${r.command}\`.
${r.errors.length ? `\n### Failed measurements\n\n${r.errors.map((e) => `- ${e.replace(/\n/g, " ")}`).join("\n")}\n` : ""}`;

  if (out.doc) writeFileSync(out.doc, markdown);
  return { markdown, table };
}

/** Values of two paths' rows paired run by run (both lists are in run order). */
function pairwise<A, B>(a: A[] | undefined, b: B[] | undefined, f: (x: A, y: B) => number): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(a?.length ?? 0, b?.length ?? 0); i++) out.push(f(a![i]!, b![i]!));
  return out;
}

// ---- the chart ------------------------------------------------------------------------------------

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

const COLOURS: Record<PathId, string> = {
  direct: "#8c8c8c",
  websockify: "#4e79a7",
  porthole: "#f28e2b",
  "porthole-runtime": "#f9c08a",
  "porthole-defaults": "#e15759",
};

/** Horizontal bars, one panel per figure, each with its own scale; whiskers show min–max. */
function chart(r: Results): string {
  const panels: { title: string; unit: string; digits: number; bars: { path: PathId; s: Summary }[] }[] = [];
  const paths = (["direct", "websockify", "porthole", "porthole-runtime", "porthole-defaults"] as PathId[]);
  const add = (title: string, unit: string, digits: number, rows: Partial<Record<PathId, unknown[]>>, f: (x: never) => number) => {
    const bars = paths.filter((p) => (rows[p]?.length ?? 0) > 0).map((p) => ({ path: p, s: summarize((rows[p] as never[]).map(f)) }));
    if (bars.length) panels.push({ title, unit, digits, bars });
  };
  add(`Throughput, ${r.config.throughputBytes / MiB} MiB download (MB/s, higher is better)`, "MB/s", 0, r.throughput, (x: ThroughputRow) => x.mbs);
  add("Echo round trip p50, 16 bytes (ms, lower is better)", "ms", 3, r.latency, (x: LatencyRow) => x.p50 / 1000);
  add("Echo round trip p99 (ms, lower is better)", "ms", 2, r.latency, (x: LatencyRow) => x.p99 / 1000);
  add("Echo p99 while a neighbour downloads flat out (ms, lower is better)", "ms", 2, r.fairness, (x: FairnessRow) => x.p99 / 1000);

  const width = 760;
  const left = 190;
  const barH = 18;
  const gap = 6;
  let y = 34;
  const parts: string[] = [];
  for (const panel of panels) {
    parts.push(`<text x="10" y="${y}" class="t">${esc(panel.title)}</text>`);
    y += 10;
    const maxV = Math.max(...panel.bars.map((b) => (Number.isFinite(b.s.max) ? b.s.max : b.s.median))) || 1;
    const scale = (width - left - 110) / maxV;
    for (const b of panel.bars) {
      const w = Math.max(1, b.s.median * scale);
      parts.push(`<text x="${left - 8}" y="${y + 13}" class="l" text-anchor="end">${esc(PATH_LABEL[b.path])}</text>`);
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLOURS[b.path]}"/>`);
      if (b.s.runs > 1 && Number.isFinite(b.s.min)) {
        const x1 = left + b.s.min * scale;
        const x2 = left + b.s.max * scale;
        parts.push(`<line x1="${x1.toFixed(1)}" x2="${x2.toFixed(1)}" y1="${y + barH / 2}" y2="${y + barH / 2}" class="w"/>`);
        parts.push(`<line x1="${x1.toFixed(1)}" x2="${x1.toFixed(1)}" y1="${y + 4}" y2="${y + barH - 4}" class="w"/>`);
        parts.push(`<line x1="${x2.toFixed(1)}" x2="${x2.toFixed(1)}" y1="${y + 4}" y2="${y + barH - 4}" class="w"/>`);
      }
      const labelX = left + Math.max(w, Number.isFinite(b.s.max) ? b.s.max * scale : w) + 6;
      parts.push(`<text x="${labelX.toFixed(1)}" y="${y + 13}" class="v">${num(b.s.median, panel.digits)} ${panel.unit}</text>`);
      y += barH + gap;
    }
    y += 22;
  }
  const height = y;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">
<style>.t{font-size:14px;font-weight:600;fill:#222}.l{font-size:12px;fill:#333}.v{font-size:12px;fill:#222}.w{stroke:#222;stroke-width:1.2}.n{font-size:11px;fill:#666}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="16" class="n">npm run bench, ${esc(r.date.slice(0, 10))}: median of ${r.config.runs} runs, whiskers min–max; ${r.machine.nproc} cores, ${esc(r.machine.cpu)}</text>
${parts.join("\n")}
</svg>
`;
}
