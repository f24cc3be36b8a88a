/**
 * Turns the benchmark's raw results into docs/benchmarks.md (figures here, wording in
 * report-page.ts) and a hand-drawn SVG chart.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { STREAM_WINDOW_BYTES } from "../shared/protocol/limits.ts";
import { PATH_LABEL, type PathId } from "./paths.ts";
import { mark, num, page } from "./report-page.ts";
import { addedP50, allOpened, connectorPerConsole, ratio, type Results, scaleDelta, SECTIONS, type SectionName, stallGrowth, stallMet } from "./sections.ts";
import { pairwise, pick, type Summary, summarize } from "./stats.ts";

const MiB = 1024 * 1024;
const KiB = 1024;
const WINDOW_KIB = STREAM_WINDOW_BYTES / KiB;

/** "median (min–max)" for a set of runs; the range is left out for a single run. */
function fmt(s: Summary, digits = 0): string {
  if (s.runs === 0) return "–";
  return s.runs > 1 ? `${num(s.median, digits)} (${num(s.min, digits)}–${num(s.max, digits)})` : num(s.median, digits);
}

const ms = (us: number) => us / 1000;
const has = (rows: unknown[] | undefined) => (rows?.length ?? 0) > 0;

/** The figures the page and its table are made of, for one run. */
function figures(r: Results) {
  const { throughput: t, latency: l, fairness: f, scale: sc, stall: st } = r;
  const verdicts = Object.fromEntries(Object.entries(SECTIONS).map(([k, s]) => [k, s.verdict(r)])) as Record<SectionName, boolean | null>;
  return {
    t, l, f, sc, st, verdicts,
    thr: (p: PathId) => pick(t[p], (x) => x.mbs),
    ratio: (a: PathId, b: PathId) => ratio(t, a, b),
    lat: (p: PathId, k: "p50" | "p99" | "max") => pick(l[p], (x) => ms(x[k])),
    fair: (p: PathId, k: "p50" | "p99" | "max") => pick(f[p], (x) => ms(x[k])),
    addedP50: addedP50(l),
    fairVsWsf: pairwise(f.porthole, f.websockify, (a, b) => a.p99 - b.p99),
    perConsole: (p: PathId, key: string) => pick(sc[p], (x) => scaleDelta(x, key, "before")),
    connectorPerConsole: connectorPerConsole(sc),
    allOpened: allOpened(sc.porthole),
    growth: (p: PathId, key: string, from: "baseline" | "stalledAt" = "baseline") => stallGrowth(st[p], key, from),
    stallRuntime: stallMet(st["porthole-runtime"]),
  };
}
export type Figures = ReturnType<typeof figures>;

/** The results table: one row per figure, columns direct / websockify / Porthole / target / verdict. */
function resultRows(r: Results, x: Figures): string[][] {
  const { t, l, f, sc, st, verdicts: v } = x;
  const rows: string[][] = [];
  const row = (...cells: string[]) => rows.push(cells);
  const n = r.config.scaleConsoles;
  const three = (g: (p: PathId) => string) => [g("direct"), g("websockify"), g("porthole")];
  if (has(t.direct) || has(t.porthole)) {
    row(`**Throughput**, one stream downloading ${r.config.throughputBytes / MiB} MiB (MB/s)`, ...three((p) => fmt(x.thr(p))), "≥ websockify and ≥ 50% of direct", mark(v.throughput));
    row("… Porthole ÷ websockify", "", "", fmt(x.ratio("porthole", "websockify"), 2), "≥ 1", "");
    row("… Porthole ÷ direct TCP", "", fmt(x.ratio("websockify", "direct"), 2), fmt(x.ratio("porthole", "direct"), 2), "≥ 0.5", "");
  }
  if (has(l.porthole)) {
    row(`**Latency**, 16-byte echo round trip, p50 (ms)`, ...three((p) => fmt(x.lat(p, "p50"), 3)), "", "");
    row("… p99 (ms)", ...three((p) => fmt(x.lat(p, "p99"), 3)), "", "");
    row("… max (ms)", ...three((p) => fmt(x.lat(p, "max"), 2)), "", "");
    row("… Porthole p50 − websockify p50 (ms)", "", "", fmt(x.addedP50, 3), "≤ 1 ms", mark(v.latency));
  }
  if (has(f.porthole)) {
    const rq = (p: PathId) => fmt(pick(f[p], (y) => (y.relayRunQueuePerSecond ?? Number.NaN) * 1000));
    row("**Fairness**, echo p99 while a neighbour downloads flat out (ms)", ...three((p) => fmt(x.fair(p, "p99"), 2)), "≤ 10 ms and ≤ websockify's", mark(v.fairness));
    row("… echo p50 under load (ms)", ...three((p) => fmt(x.fair(p, "p50"), 3)), "", "");
    row("… the neighbour's throughput meanwhile (MB/s)", ...three((p) => fmt(pick(f[p], (y) => y.neighbourMBs))), "", "");
    row("… the relay's processes waiting for a CPU (ms per s, /proc/<pid>/schedstat)", "no relay", rq("websockify"), rq("porthole"), "", "");
    row("… runs where Porthole's p99 ≤ websockify's", "", "", `${x.fairVsWsf.filter((d) => d <= 0).length} of ${x.fairVsWsf.length}`, "", "");
  }
  if (has(sc.porthole)) {
    const opened = (p: PathId) => {
      if (!has(sc[p])) return "–";
      const short = sc[p]!.find((y) => y.ok < y.consoles);
      const why = short?.relayError ?? short?.firstFailure;
      return `${sc[p]!.map((y) => y.ok).join(", ")} of ${n}${why ? ` (the rest: \`${why.replace(/\|/g, "/").slice(0, 80)}\`)` : ""}`;
    };
    const s = (p: PathId, k: "totalSeconds" | "ticketSeconds" | "openSeconds" | "openP50ms" | "openP99ms") => fmt(pick(sc[p], (y) => y[k]), 1);
    const total = (p: PathId, key: string) => fmt(pick(sc[p], (y) => (y.after[key] ?? Number.NaN) / MiB));
    const perTicket = pick(sc.porthole, (y) => ((y.afterTickets["edge RSS"] ?? Number.NaN) - (y.before["edge RSS"] ?? Number.NaN)) / y.consoles / KiB);
    row(`**Scale**, ${n} concurrent consoles: opened and echoed`, ...three(opened), `all ${n}`, "");
    row(`… time to open all ${n}, ${r.config.scaleConcurrency} at a time (s)`, s("direct", "totalSeconds"), s("websockify", "totalSeconds"), `${s("porthole", "totalSeconds")}: tickets ${s("porthole", "ticketSeconds")} + sockets ${s("porthole", "openSeconds")}`, "", "");
    row("… one connection's open + first echo, p50 / p99 (ms)", ...three((p) => `${s(p, "openP50ms")} / ${s(p, "openP99ms")}`), "", "");
    row(`… relay memory with ${n} idle consoles (MiB)`, "no relay", `PSS ${total("websockify", "websockify PSS")}, RSS ${total("websockify", "websockify RSS")}`, `connector RSS ${total("porthole", "connector RSS")}; edge (workerd) RSS ${total("porthole", "edge RSS")}`, "", "");
    row(
      "… connector memory per idle console (KiB)",
      "no relay",
      `PSS ${fmt(x.perConsole("websockify", "websockify PSS"))}, RSS ${fmt(x.perConsole("websockify", "websockify RSS"))}`,
      `${fmt(x.connectorPerConsole, 1)} (RSS ${fmt(x.perConsole("porthole", "connector RSS"), 1)}, JS heap ${fmt(x.perConsole("porthole", "connector heap"), 1)})`,
      "≤ 64 KiB",
      mark(v.scale),
    );
    const socket = (key: string) => fmt(pick(sc.porthole, (y) => scaleDelta(y, key, "afterTickets")), 1);
    row("… edge memory per idle console socket (KiB, workerd RSS)", "", "", `${socket("edge RSS")}, of which the runtime ${socket("edge runtime RSS")} and wrangler's dev proxy the rest`, "", "");
    row("… edge memory per console ticket issued (KiB, workerd RSS)", "", "", fmt(perTicket, 1), "", "");
  }
  if (has(st.porthole)) {
    const g = (p: PathId, key: string, from?: "stalledAt") => fmt(x.growth(p, key, from));
    /** The dev proxy's RSS: all workerd processes minus the runtime. */
    const proxyGrowth = (from: "baseline" | "stalledAt") =>
      fmt(pick(st.porthole, (y) => ((y.peak["edge RSS"]! - y.peak["edge runtime RSS"]!) - (y[from]["edge RSS"]! - y[from]["edge runtime RSS"]!)) / y.clients / KiB));
    const edge = (p: PathId) => `connector ${g(p, "connector RSS")}; edge ${g(p, "edge RSS")}: runtime ${g(p, "edge runtime RSS")}`;
    const echoCell = (p: PathId) => {
      const ok = st[p]?.filter((y) => y.echo.ok);
      return has(st[p]) ? `${ok!.length} of ${st[p]!.length} ok, p99 ${fmt(pick(ok, (y) => ms(y.echo.p99!)), 2)} ms` : "–";
    };
    row(`**Stalled reader**: what the upstream pushed per stalled client, of ${r.config.stallBytes / MiB} MiB, over ${r.config.stallSeconds} s (MiB)`, ...three((p) => fmt(pick(st[p], (y) => y.upstreamWrote / y.clients / MiB), 1)), "", "");
    row("… peak memory growth per stalled stream, from before the clients connected (KiB, RSS)", "kernel buffers only", g("websockify", "websockify RSS"), `${edge("porthole")}, wrangler's dev proxy ${proxyGrowth("baseline")}`, `≤ ${WINDOW_KIB} KiB each`, mark(v.stall));
    if (has(st["porthole-runtime"])) {
      row("… the same without wrangler's dev proxy (viewers and connector on the runtime's own socket), from before (KiB, RSS)", "", "", edge("porthole-runtime"), `≤ ${WINDOW_KIB} KiB each`, mark(x.stallRuntime));
    }
    row(
      "… growth per stalled stream while stalled (from 0.5 s after the stall to the end, KiB, RSS)",
      "",
      g("websockify", "websockify RSS", "stalledAt"),
      `connector ${g("porthole", "connector RSS", "stalledAt")}; edge runtime ${g("porthole", "edge runtime RSS", "stalledAt")}, dev proxy ${proxyGrowth("stalledAt")}`,
      "",
      "",
    );
    row("… connector's own count of buffered bytes, peak per stalled stream (KiB)", "", "", fmt(pick(st.porthole, (y) => (y.peak["connector buffered"] ?? 0) / y.clients / KiB)), `≤ ${WINDOW_KIB} KiB`, "");
    row("… another console's echo meanwhile", ...three(echoCell), "keeps working", "");
  }
  return rows;
}

const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((cells) => `| ${cells.join(" | ")} |`)].join("\n");

/** CPU seconds per GiB by component (throughput): the measured cost of each hop. */
function cpuTable(x: Figures): string {
  const seen = new Set(Object.values(x.t).flatMap((rows) => (rows ?? []).flatMap((y) => Object.keys(y.cpuPerGiB))));
  const order = ["client", "upstream", "websockify", "edge proxy", "edge runtime", "connector"].filter((c) => seen.has(c));
  const rows = (Object.keys(x.t) as PathId[]).filter((p) => has(x.t[p])).map((p) => {
    const cells = order.map((c) => pick(x.t[p], (y) => y.cpuPerGiB[c] ?? Number.NaN)).map((s) => (s.runs ? num(s.median, 2) : ""));
    const all = pick(x.t[p], (y) => Object.values(y.cpuPerGiB).reduce((a, b) => a + b, 0));
    return [PATH_LABEL[p], fmt(x.thr(p)), ...cells, num(all.median, 2)];
  });
  return table(["path", "MB/s", ...order, "all processes"], rows);
}

export function writeReport(r: Results, out: { doc: string | null; chart: string; analysis: string }): { markdown: string; table: string } {
  const x = figures(r);
  const results = table(["figure", "direct TCP", "websockify", "Porthole", "target", "verdict"], resultRows(r, x));
  const variantRows = (["porthole", "porthole-runtime", "porthole-defaults"] as PathId[])
    .filter((p) => has(x.t[p]) || has(x.l[p]))
    .map((p) => [PATH_LABEL[p], fmt(x.thr(p)), fmt(x.lat(p, "p50"), 3), fmt(x.lat(p, "p99"), 3), fmt(x.lat(p, "max"), 2), has(x.f[p]) ? fmt(x.fair(p, "p99"), 2) : "not run"]);
  writeFileSync(out.chart, chart(r));
  const markdown = page(r, x, {
    chart: basename(out.chart),
    results,
    cpu: cpuTable(x),
    variants: variantRows.length > 1 ? table(["variant", "throughput (MB/s)", "echo p50 (ms)", "echo p99 (ms)", "echo max (ms)", "echo p99 beside a bulk download (ms)"], variantRows) : null,
    analysis: existsSync(out.analysis) ? readFileSync(out.analysis, "utf8").trim() : "",
  });
  if (out.doc) writeFileSync(out.doc, markdown);
  return { markdown, table: results };
}

// ---- the chart ------------------------------------------------------------------------------------

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

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
  const add = <T>(title: string, unit: string, digits: number, rows: Partial<Record<PathId, T[]>>, f: (x: T) => number) => {
    const bars = (Object.keys(COLOURS) as PathId[]).filter((p) => has(rows[p])).map((p) => ({ path: p, s: summarize(rows[p]!.map(f)) }));
    if (bars.length) panels.push({ title, unit, digits, bars });
  };
  add(`Throughput, ${r.config.throughputBytes / MiB} MiB download (MB/s, higher is better)`, "MB/s", 0, r.throughput, (x) => x.mbs);
  add("Echo round trip p50, 16 bytes (ms, lower is better)", "ms", 3, r.latency, (x) => x.p50 / 1000);
  add("Echo round trip p99 (ms, lower is better)", "ms", 2, r.latency, (x) => x.p99 / 1000);
  add("Echo p99 while a neighbour downloads flat out (ms, lower is better)", "ms", 2, r.fairness, (x) => x.p99 / 1000);

  const width = 760;
  const left = 190;
  const barH = 18;
  let y = 34;
  const parts: string[] = [];
  const line = (x1: number, x2: number, y1: number, y2: number) => parts.push(`<line x1="${x1.toFixed(1)}" x2="${x2.toFixed(1)}" y1="${y1}" y2="${y2}" class="w"/>`);
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
        const [x1, x2] = [left + b.s.min * scale, left + b.s.max * scale];
        line(x1, x2, y + barH / 2, y + barH / 2);
        line(x1, x1, y + 4, y + barH - 4);
        line(x2, x2, y + 4, y + barH - 4);
      }
      const labelX = left + Math.max(w, Number.isFinite(b.s.max) ? b.s.max * scale : w) + 6;
      parts.push(`<text x="${labelX.toFixed(1)}" y="${y + 13}" class="v">${num(b.s.median, panel.digits)} ${panel.unit}</text>`);
      y += barH + 6;
    }
    y += 22;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">
<style>.t{font-size:14px;font-weight:600;fill:#222}.l{font-size:12px;fill:#333}.v{font-size:12px;fill:#222}.w{stroke:#222;stroke-width:1.2}.n{font-size:11px;fill:#666}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="16" class="n">npm run bench, ${esc(r.date.slice(0, 10))}: median of ${r.config.runs} runs, whiskers min–max; ${r.machine.nproc} cores, ${esc(r.machine.cpu)}</text>
${parts.join("\n")}
</svg>
`;
}
