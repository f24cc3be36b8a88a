/**
 * Turns the benchmark's raw results into docs/benchmarks.md: the figures, tables and verdicts
 * here, the wording in bench/report.md (a template with {{placeholders}}), the hand-written
 * analysis from bench/analysis.md.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { CREDIT_CHUNK_BYTES, STREAM_WINDOW_BYTES } from "../shared/protocol/limits.ts";
import { PATH_LABEL, type PathId } from "./paths.ts";
import type { CapacityStep } from "./section-kit.ts";
import { allOpened, connectorPerConsole, COST_RATE, type CostRow, DELIVERED_MIN, ECHO_P99_MAX_MS, held, LATE_P99_MAX_MS, type Lanes, type LatencyRow, ratioOf, type Results, scaleDelta, STREAMS, stallGrowth, why } from "./sections.ts";
import { pick, type Summary } from "./stats.ts";

const MiB = 1024 * 1024;
const KiB = 1024;
const ms = (us: number) => us / 1000;
const has = (rows: unknown[] | undefined) => (rows?.length ?? 0) > 0;

export function num(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return "–";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
/** "median (min–max)" for a set of runs; the range is left out for a single run. */
function fmt(s: Summary, digits = 0): string {
  if (s.runs === 0) return "–";
  return s.runs > 1 ? `${num(s.median, digits)} (${num(s.min, digits)}–${num(s.max, digits)})` : num(s.median, digits);
}
/** Two significant figures: for extrapolations, which are no more precise than that. */
const approx = (x: number) => (Number.isFinite(x) ? num(Number(x.toPrecision(2))) : "–");
const mark = (ok: boolean | null) => (ok === null ? "– not measured" : ok ? "✅ met" : "❌ missed");
const table = (head: string[], rows: string[][]) =>
  rows.length === 0
    ? "Not measured in this run."
    : [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((cells) => `| ${cells.join(" | ")} |`)].join("\n");
const label = (lane: string) => {
  const [path, kind] = lane.split(":") as [PathId, string?];
  return `${PATH_LABEL[path]}${kind ? `, ${kind} client` : ""}`;
};
/** Lanes present, in the order the section lists them. */
const lanesOf = <T>(l: Lanes<T>) => Object.keys(l).filter((k) => has(l[k]));
/** A lane's websockify counterpart: the same kind of client (a credit client there is a plain one). */
const peer = (lane: string) => (lane.endsWith("browser") ? "websockify:browser" : "websockify:plain");

// ---- the cost model ----------------------------------------------------------------------------------

/** Workers Paid pricing (/work/shared/reference/platform-notes.md, "Pricing"), above the included amounts. */
export const PRICE = { perMillionRequests: 0.15, messagesPerRequest: 20, perMillionGBs: 12.5, gb: 0.128, idleEvictionSeconds: 10 };

/**
 * Billed requests and GB-s per hour from a measured window. Requests: incoming WebSocket messages
 * (the connector's, heartbeats included, and the viewer's) at 20 to one, plus alarms. Heartbeats
 * are answered by the runtime's auto-response without waking the object; whether Cloudflare bills
 * those as messages is not documented, so the model counts them (12 requests per connector-hour).
 * Awake: `awake` says the object never sleeps (a busy console); otherwise each alarm keeps it in
 * memory for the idle-eviction time.
 */
export function perHour(r: CostRow, awake: boolean) {
  const h = 3600 / r.seconds;
  const requests = ((r.connectorMessages + r.viewerMessages) / PRICE.messagesPerRequest + r.alarms) * h;
  const seconds = awake ? 3600 : Math.min(3600, r.alarms * h * PRICE.idleEvictionSeconds);
  const gbs = seconds * PRICE.gb;
  return { requests, gbs, dollars: (requests * PRICE.perMillionRequests + gbs * PRICE.perMillionGBs) / 1e6 };
}

const WINDOW_NAME: Record<string, string> = {
  site: "a site's connector, no console",
  idle: "one idle console (credit client)",
  credit: `one console at ${COST_RATE / 1e6} MB/s, credit client`,
  plain: `one console at ${COST_RATE / 1e6} MB/s, plain client`,
};

function costTables(c: Lanes<CostRow>) {
  const row = (lane: string) => c[lane]?.[0];
  const observed = lanesOf(c).map((lane) => {
    const r = row(lane)!;
    const per = (x: number) => num(x / r.seconds, 2);
    return [WINDOW_NAME[lane] ?? lane, num(r.seconds), num(r.bytes / r.seconds / 1e6, 2), per(r.connectorMessages), per(r.viewerMessages), num((r.alarms / r.seconds) * 3600), num((r.wakes / r.seconds) * 3600)];
  });
  const [site, idle] = [row("site"), row("idle")];
  const model: string[][] = [];
  const money = (x: { requests: number; gbs: number; dollars: number }, times = 1) => [num(x.requests * times), num(x.gbs * times), `$${num(x.dollars * times, 4)}`];
  if (site) model.push(["a site with an idle connector, per month (730 h)", ...money(perHour(site, false), 730)]);
  if (site && idle) {
    // The console's own share: what the idle-console window saw beyond the bare site's rates.
    const beyond = (k: "alarms" | "connectorMessages") => Math.max(0, idle[k] - (site[k] / site.seconds) * idle.seconds);
    model.push(["an idle console, per hour (on top of its site)", ...money(perHour({ ...idle, alarms: beyond("alarms"), connectorMessages: beyond("connectorMessages") }, false))]);
  }
  for (const lane of ["credit", "plain"]) {
    const r = row(lane);
    if (!r) continue;
    // The console's own messages: the connector's beyond the bare site's heartbeats.
    const own = site ? Math.max(0, r.connectorMessages - (site.connectorMessages / site.seconds) * r.seconds) : r.connectorMessages;
    model.push([`a console at ${COST_RATE / 1e6} MB/s, ${lane} client, per hour (awake all hour)`, ...money(perHour({ ...r, alarms: 0, connectorMessages: own }, true))]);
  }
  const dollars = (what: string) => model.find((m) => m[0]!.startsWith(what))?.[3] ?? "–";
  const summary = `site-month with an idle connector ${dollars("a site")}, idle console-hour ${dollars("an idle")}, console-hour at ${COST_RATE / 1e6} MB/s ${dollars("a console at 1 MB/s, credit")} (credit) / ${dollars("a console at 1 MB/s, plain")} (plain)`;
  return {
    summary,
    table: table(["window", "seconds", "MB/s", "connector messages/s (heartbeats included)", "viewer messages/s", "alarms per hour", "wakes per hour"], observed),
    model: table(["what", "billed requests", "GB-s", "cost"], model),
    observed: !!site && !!idle && Number.isFinite(site.connectorMessages),
  };
}

// ---- tables and verdicts -----------------------------------------------------------------------------

function throughputTable(r: Results): string {
  const t = r.throughput;
  const parts = ["client", "upstream", "websockify", "edge proxy", "edge runtime", "connector"];
  return table(
    ["path and client", "MB/s", "÷ websockify (same client)", ...parts.map((p) => `${p} CPU-s/GiB`), "all processes"],
    lanesOf(t).map((lane) => [
      label(lane) + (t[lane]!.some((x) => x.deflated) ? " (deflate negotiated)" : ""),
      fmt(pick(t[lane], (x) => x.mbs)),
      lane.startsWith("porthole") ? fmt(ratioOf(t, lane, peer(lane), (x) => x.mbs), 2) : "",
      ...parts.map((p) => (t[lane]!.some((x) => p in x.cpuPerGiB) ? num(pick(t[lane], (x) => x.cpuPerGiB[p] ?? Number.NaN).median, 2) : "")),
      num(pick(t[lane], (x) => Object.values(x.cpuPerGiB).reduce((a, b) => a + b, 0)).median, 2),
    ]),
  );
}

function latencyTable(l: Lanes<LatencyRow>): string {
  const p = (rows: LatencyRow[] | undefined, f: (x: LatencyRow) => number, d = 2) => fmt(pick(rows, (x) => ms(f(x))), d);
  return table(
    ["path", "idle p50 (ms)", "idle p99 (ms)", "under load p50 (ms)", "under load p99 (ms)", "under load max (ms)", "neighbour (MB/s)", "relay waiting for a CPU (ms/s)"],
    lanesOf(l).map((lane) => [
      label(lane),
      p(l[lane], (x) => x.idle.p50, 3),
      p(l[lane], (x) => x.idle.p99),
      p(l[lane], (x) => x.load.p50, 3),
      p(l[lane], (x) => x.load.p99),
      p(l[lane], (x) => x.load.max),
      fmt(pick(l[lane], (x) => x.neighbourMBs)),
      lane === "direct" ? "no relay" : fmt(pick(l[lane], (x) => x.runQueuePerSecond * 1000)),
    ]),
  );
}

function compression(r: Results) {
  const c = r.compression;
  const rows: string[][] = [];
  const decisions: string[] = [];
  const verdicts: string[] = [];
  for (const s of STREAMS) {
    const on = c[`${s}:deflate`];
    const off = c[`${s}:off`];
    for (const [mode, rs] of [["offered", on], ["not offered", off]] as const) {
      if (!has(rs)) continue;
      rows.push([
        s,
        mode + (rs!.some((x) => x.deflated) ? " (negotiated)" : ""),
        fmt(pick(rs, (x) => x.mbs)),
        fmt(pick(rs, (x) => x.wireRatio * 100)),
        num(pick(rs, (x) => x.cpuPerGiB["edge runtime"] ?? Number.NaN).median, 2),
        num(pick(rs, (x) => x.cpuPerGiB.client ?? Number.NaN).median, 2),
        s === "scroll" ? `${fmt(pick(rs, (x) => ms(x.late!.p50)), 2)} / ${fmt(pick(rs, (x) => ms(x.late!.p99)), 2)}` : "",
      ]);
    }
    if (!has(on) || !has(off)) continue;
    const wire = pick(on, (x) => x.wireRatio).median;
    const cpu = (rs: typeof on) => pick(rs, (x) => x.cpuPerGiB["edge runtime"] ?? Number.NaN).median;
    const wins = wire <= 0.75;
    verdicts.push(`${s}: ${wins ? "deflate" : "off"} (wire ${num(wire * 100)}%, runtime ${num(cpu(on), 1)} vs ${num(cpu(off), 1)} CPU-s/GiB)`);
    const seg = r.segments?.[s];
    const late = (rs: typeof on) => pick(rs, (x) => (x.late ? ms(x.late.p99) : Number.NaN)).median;
    decisions.push(
      `- **${s}**: ${wins ? "deflate" : "no deflate"} wins. Deflate leaves ${num(wire * 100)}% of the bytes on the viewer's link ` +
        `for ${num(cpu(on), 1)} instead of ${num(cpu(off), 1)} CPU-s per GiB in the edge runtime` +
        (seg ? ` (at the rate recorded, ${num(seg.bytes / seg.seconds / 1e3)} kB/s, ${num(((cpu(on) - cpu(off)) * seg.bytes) / seg.seconds / 1024 ** 3 * 1000, 2)} ms more CPU per second of console)` : "") +
        (Number.isFinite(late(on)) ? `, paced delivery p99 ${num(late(on), 2)} ms instead of ${num(late(off), 2)} ms` : "") +
        (wins ? ": a saving of over a quarter is worth that." : ": less than a quarter saved is not worth it."),
    );
  }
  const table1 = table(["stream", "deflate", "MB/s", "bytes on the wire (% of console bytes)", "edge runtime CPU-s/GiB", "client CPU-s/GiB", "paced replay: delivery after due, p50 / p99 (ms)"], rows);
  return { table: table1, decisions: decisions.join("\n"), summary: verdicts.join("; "), decided: decisions.length === STREAMS.length };
}

function stallTable(r: Results): string {
  const st = r.stall;
  return table(
    ["path", "upstream pushed per stalled client (MiB)", "connector growth per stalled stream (KiB)", "edge growth (KiB)", "of which the runtime (KiB)", "runtime growth while stalled (KiB)", "another console's echo"],
    lanesOf(st).map((lane) => {
      const g = (key: string) => (st[lane]![0]!.peak[key] === undefined ? "" : fmt(stallGrowth(st[lane], key)));
      const ok = st[lane]!.filter((y) => y.echo.ok);
      const stalled = st[lane]![0]!.peak["edge runtime RSS"] === undefined ? "" : fmt(stallGrowth(st[lane], "edge runtime RSS", "stalledAt"));
      return [label(lane), fmt(pick(st[lane], (y) => y.upstreamWrote / y.clients / MiB), 1), g("connector RSS"), g("edge RSS") || g("websockify RSS"), g("edge runtime RSS"), stalled, `${ok.length} of ${st[lane]!.length} ok, p99 ${fmt(pick(ok, (y) => ms(y.echo.p99!)), 2)} ms`];
    }),
  );
}

function scaleTable(r: Results): string {
  const sc = r.scale;
  return table(
    ["path", "opened and echoed", "time to open all (s)", "open + first echo p50 / p99 (ms)", "memory per idle console (KiB)"],
    lanesOf(sc).map((lane) => {
      const rows = sc[lane]!;
      const short = rows.find((y) => y.ok < y.consoles);
      const why = short?.relayError ?? short?.firstFailure;
      const per = (key: string) => fmt(pick(rows, (x) => scaleDelta(x, key, "before")), 1);
      const memory =
        lane === "websockify" ? `PSS ${per("websockify PSS")}, RSS ${per("websockify RSS")}` : lane === "porthole"
            ? `connector ${fmt(connectorPerConsole(sc), 1)}; edge (workerd RSS) per socket ${fmt(pick(rows, (x) => scaleDelta(x, "edge RSS", "afterTickets")), 1)}, per ticket ${fmt(pick(rows, (x) => ((x.afterTickets["edge RSS"] ?? Number.NaN) - (x.before["edge RSS"] ?? Number.NaN)) / x.consoles / KiB), 1)}`
            : "no relay";
      return [label(lane), `${rows.map((y) => y.ok).join(", ")} of ${rows[0]!.consoles}${why ? ` (the rest: \`${why.replace(/\|/g, "/").slice(0, 80)}\`)` : ""}`, fmt(pick(rows, (y) => y.totalSeconds), 1), `${fmt(pick(rows, (y) => y.openP50ms), 1)} / ${fmt(pick(rows, (y) => y.openP99ms), 1)}`, memory];
    }),
  );
}

// ---- capacity ---------------------------------------------------------------------------------------

/** Cloudflare's throughput guidance for one object (platform notes): about 1,000 messages a second. */
export const OBJECT_MESSAGES_PER_SECOND = 1000;
/** Memory of one Durable Object isolate. */
export const OBJECT_MEMORY_BYTES = 128 * 1e6;

const corePct = (s: CapacityStep, part: string) => (part in s.cpu ? (100 * s.cpu[part]!) / s.seconds : Number.NaN);
/** CPU milliseconds a process spends per console-second. */
const msPerConsole = (s: CapacityStep, part: string) => (1000 * (s.cpu[part] ?? Number.NaN)) / s.seconds / s.consoles;
/** Messages the site object receives per console-second: the connector's, and the viewer's credit (one per 128 KiB consumed, from the bytes). */
const inboundPerConsole = (s: CapacityStep) => (s.connectorMessages + s.delivered / CREDIT_CHUNK_BYTES) / s.seconds / s.consoles;
const growthPerConsole = (s: CapacityStep, key: string) => ((s.after[key] ?? Number.NaN) - (s.before[key] ?? Number.NaN)) / s.consoles / KiB;
const mibAt = (s: CapacityStep, key: string) => (s.after[key] ?? Number.NaN) / MiB;
/** The parts of the path by CPU, busiest first (clients and upstream are the benchmark's, not Porthole's). */
const PARTS = ["edge runtime", "connector", "edge proxy", "clients", "upstream"];

/** Least-squares line y = a + b·x through points (x, y). */
function fit(points: [number, number][]): { a: number; b: number } {
  const n = points.length;
  if (n < 2) return { a: Number.NaN, b: Number.NaN };
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const b = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return { a: my - b * mx, b };
}

/**
 * What the capacity section found: the last step that held, the first that fell off, which
 * process was busiest, and how each cost grows with consoles: a line through the steps that held
 * (the relay on time: a starved relay batches more per message and looks cheaper per console),
 * its slope the cost of one more console and its intercept what the probe, heartbeats and the idle
 * relay cost. One object on Cloudflare is extrapolated from the largest step that held, fixed costs
 * included (so it errs low): one core, the message guidance, the isolate's memory.
 */
function capacityFindings(r: Results) {
  const typical = r.capacity?.typical?.[0]?.steps ?? [];
  const bulk = r.capacity?.bulk?.[0]?.steps ?? [];
  const firstFall = typical.findIndex((s) => !held(s));
  const last = (firstFall < 0 ? typical : typical.slice(0, firstFall)).at(-1);
  const fell = firstFall < 0 ? undefined : typical[firstFall];
  const top = typical.filter((s) => !s.error).at(-1);
  const busiest = top ? PARTS.filter((p) => p in top.cpu).sort((a, b) => corePct(top, b) - corePct(top, a))[0]! : "";
  const onTime = typical.filter(held);
  const line = (f: (s: CapacityStep) => number) => fit(onTime.map((s) => [s.consoles, f(s)]));
  const runtime = line((s) => (s.cpu["edge runtime"] ?? Number.NaN) / s.seconds);
  const connector = line((s) => (s.cpu.connector ?? Number.NaN) / s.seconds);
  const messages = line((s) => inboundPerConsole(s) * s.consoles);
  const memory = line((s) => s.after["edge runtime RSS"] ?? Number.NaN);
  const bestBulk = bulk.reduce((a, s) => Math.max(a, s.delivered / s.seconds / 1e6), 0);
  return {
    typical,
    bulk,
    last,
    fell,
    top,
    busiest,
    runtime,
    connector,
    messages,
    memory,
    perCore: last ? last.consoles / (corePct(last, "edge runtime") / 100) : Number.NaN,
    connectorPerCore: last ? last.consoles / (corePct(last, "connector") / 100) : Number.NaN,
    byMessages: last ? OBJECT_MESSAGES_PER_SECOND / inboundPerConsole(last) : Number.NaN,
    byMemory: last ? OBJECT_MEMORY_BYTES / KiB / growthPerConsole(last, "edge runtime RSS") : Number.NaN,
    bestBulk,
    rate: r.capacity?.typical?.[0]?.rate ?? Number.NaN,
  };
}

function capacityTables(r: Results) {
  const f = capacityFindings(r);
  const verdict = (s: CapacityStep) => (held(s) ? "held" : `**fell off**: ${why(s).replace(/\|/g, "/").slice(0, 120)}`);
  const echo = (s: CapacityStep) => (s.echo ? `${num(ms(s.echo.p50), 2)} / ${num(ms(s.echo.p99), 1)}` : "failed");
  const cores = (s: CapacityStep) => PARTS.filter((p) => p in s.cpu && !(p === "edge proxy" && corePct(s, p) < 0.5)).map((p) => num(corePct(s, p))).join(" / ");
  const coreHead = (s?: CapacityStep) => `CPU, % of one core (${PARTS.filter((p) => s && p in s.cpu && !(p === "edge proxy" && corePct(s, p) < 0.5)).join(" / ")})`;
  const typical = table(
    ["consoles", "MB/s delivered / offered", "probe echo p50 / p99 (ms)", "screen updates late p99 (ms)", coreHead(f.typical[0]), "machine busy (%)", "relay waiting for a CPU (ms/s)", "CPU ms per console-second (runtime / connector)", "messages to the object per console-second", "runtime RSS MiB (KiB per console)", "connector RSS MiB (KiB per console)", "step"],
    f.typical.map((s) => [
      num(s.consoles) + (s.opened < s.consoles ? ` (${num(s.opened)} opened)` : ""),
      `${num(s.delivered / s.seconds / 1e6, 2)} / ${num(s.offered / s.seconds / 1e6, 2)}`,
      echo(s),
      s.late ? num(ms(s.late.p99), 1) : "–",
      cores(s),
      num(100 * s.machineBusy),
      num((1000 * s.runQueue) / s.seconds),
      `${num(msPerConsole(s, "edge runtime"), 2)} / ${num(msPerConsole(s, "connector"), 2)}`,
      num(inboundPerConsole(s), 1),
      `${num(mibAt(s, "edge runtime RSS"))} (${num(growthPerConsole(s, "edge runtime RSS"))})`,
      `${num(mibAt(s, "connector RSS"))} (${num(growthPerConsole(s, "connector RSS"))})`,
      verdict(s),
    ]),
  );
  const bulk = table(
    ["bulk consoles", "aggregate MB/s", "probe echo p50 / p99 (ms)", coreHead(f.bulk[0]), "machine busy (%)", "relay waiting for a CPU (ms/s)", "CPU-s per GiB (runtime / connector)", "step"],
    f.bulk.map((s) => {
      const gib = s.delivered / 1024 ** 3;
      return [num(s.consoles), num(s.delivered / s.seconds / 1e6), echo(s), cores(s), num(100 * s.machineBusy), num((1000 * s.runQueue) / s.seconds), `${num((s.cpu["edge runtime"] ?? Number.NaN) / gib, 2)} / ${num((s.cpu.connector ?? Number.NaN) / gib, 2)}`, verdict(s)];
    }),
  );
  const { last, fell, top } = f;
  const mbs = (s: CapacityStep) => num(s.delivered / s.seconds / 1e6, 1);
  const summary = !last
    ? "no step held"
    : `typical consoles: held up to ${num(last.consoles)} (${mbs(last)} MB/s delivered, probe p99 ${num(ms(last.echo!.p99), 1)} ms)` +
      (fell ? `, fell off at ${num(fell.consoles)} (${why(fell)})` : `, no fall-off up to the last step measured`) +
      `; at ${num(top!.consoles)} the busiest process was ${f.busiest} at ${num(corePct(top!, f.busiest))} % of a core, the machine ${num(100 * top!.machineBusy)} % busy` +
      (f.bulk.length ? `; bulk: up to ${num(f.bestBulk)} MB/s in total` : "") +
      `; each typical console adds ${num(f.runtime.b * 1000, 2)} ms of runtime CPU per second and ${num(f.connector.b * 1000, 2)} ms of the connector's (a line through the steps that held)` +
      `; one object on Cloudflare, extrapolated from ${num(last.consoles)}: ≥ ~${approx(f.perCore)} typical consoles per core of runtime CPU, ~${approx(f.byMessages)} by the ~${num(OBJECT_MESSAGES_PER_SECOND)} messages/s guidance`;
  return { ...f, typicalTable: typical, bulkTable: bulk, summary };
}

/** The Targets list: every target of issue #14 (and the older ones kept), met or missed, with figures. */
function targets(r: Results, cost: ReturnType<typeof costTables>, comp: ReturnType<typeof compression>): string {
  const { throughput: t, latency: l, keys: k } = r;
  const out: string[] = [];
  /** `why`: for a missed target, what the measurements say holds it back and what would move it. */
  const add = (name: string, ok: boolean | null, figures: string, why = "") =>
    out.push(`- ${name}: **${mark(ok)}**${ok === null ? "" : ` (${figures})`}.${ok === false && why ? `\n  Why, from this run: ${why}` : ""}`);
  const cpuOf = (lane: string, part?: string) => pick(t[lane], (y) => (part ? (y.cpuPerGiB[part] ?? Number.NaN) : Object.values(y.cpuPerGiB).reduce((a, b) => a + b, 0))).median;
  for (const [path, bar, name] of [["porthole", 1, "production-like path (npm run serve)"], ["porthole-dev", 0.5, "through wrangler dev"]] as const) {
    for (const kind of ["credit", "plain", "browser"]) {
      const lane = `${path}:${kind}`;
      const x = ratioOf(t, lane, peer(lane), (y) => y.mbs);
      const why =
        `every process on the path together spends ${num(cpuOf(lane), 1)} CPU-s per GiB against websockify's ${num(cpuOf(peer(lane)), 1)} (connector ${num(cpuOf(lane, "connector"), 1)}, edge runtime ${num(cpuOf(lane, "edge runtime"), 1)}` +
        `${path === "porthole-dev" ? `, wrangler's dev proxy ${num(cpuOf(lane, "edge proxy"), 1)}` : ""}, client ${num(cpuOf(lane, "client"), 1)}); on ${r.machine.nproc} cores shared with the client and the upstream, that sum caps one stream. ` +
        (t[lane]?.some((y) => y.deflated)
          ? "permessage-deflate was negotiated: the runtime compresses every byte. Would move it: the edge declining deflate for console streams (see the compression section)."
          : "Would move it: less CPU per byte in the connector and the runtime (fewer copies and allocations per message), the larger parts above.");
      add(`1. Throughput, ${name}, ${kind} clients ≥ ${bar}× websockify's`, x.runs ? x.median >= bar : null, `${fmt(pick(t[lane], (y) => y.mbs))} MB/s = ${fmt(x, 2)}× websockify`, why);
    }
  }
  const cpu = (part: string) => pick(t["porthole:credit"], (y) => y.cpuPerGiB[part] ?? Number.NaN).median;
  const wsf = pick(t["websockify:plain"], (y) => y.cpuPerGiB.websockify ?? Number.NaN).median;
  const cpuOk = has(t["porthole:credit"]) && has(t["websockify:plain"]) ? ["connector", "edge runtime"].every((p) => cpu(p) <= Math.min(1, wsf)) : null;
  add(
    "2. CPU per GiB relayed (production-like path, credit client): connector ≤ 1.0 s and edge runtime ≤ 1.0 s, each ≤ websockify's whole relay",
    cpuOk,
    `connector ${num(cpu("connector"), 2)} s, edge runtime ${num(cpu("edge runtime"), 2)} s, websockify ${num(wsf, 2)} s; plain clients: connector ${num(cpuOf("porthole:plain", "connector"), 2)} s, runtime ${num(cpuOf("porthole:plain", "edge runtime"), 2)} s`,
    `each relays a byte with more work than websockify's one read and one write: the connector reads it into a reused block and copies it once into a tunnel message (frames written in place, up to 256 KiB), the runtime decodes the tunnel and re-sends to the viewer. Would move it: fewer messages and less work per message in the runtime, then a profile of what the connector has left (see the analysis).`,
  );
  const loaded = (lanes: Lanes<LatencyRow>, path: string) => pick(lanes[path], (y) => ms(y.load.p99));
  const vsWsf = (lanes: Lanes<LatencyRow>) => ratioOf(lanes, "porthole", "websockify", (y) => y.load.p99);
  const lOk = has(l.porthole) && has(l.websockify) ? loaded(l, "porthole").median <= 5 && vsWsf(l).median <= 2 : null;
  const rq = (path: string) => num(pick(l[path], (y) => y.runQueuePerSecond * 1000).median);
  add(
    "3. Keystroke echo p99 while a neighbour downloads flat out ≤ 5 ms and ≤ 2× websockify's",
    lOk,
    `${fmt(loaded(l, "porthole"), 2)} ms = ${fmt(vsWsf(l), 2)}× websockify's ${fmt(loaded(l, "websockify"), 2)} ms`,
    `the echo shares the connector's socket and the object's event queue with the neighbour's window, and the relay's processes waited ${rq("porthole")} ms per second for a CPU (websockify's: ${rq("websockify")} ms). Would move it: less CPU per byte (target 2), which frees the cores, more than a smaller window, which costs throughput.`,
  );
  const kOk = has(k.porthole) && has(k.websockify) ? vsWsf(k).median <= 2 : null;
  const idle = (path: string) => fmt(pick(k[path], (y) => ms(y.idle.p50)), 2);
  add(
    "4. Keystroke to pixels on a real Xvnc (no bar in the issue; the benchmark applies target 3's: p99 under load ≤ 2× websockify's)",
    kOk,
    `idle p50 ${idle("porthole")} ms vs websockify ${idle("websockify")} ms, direct ${idle("direct")} ms; under load p99 ${fmt(loaded(k, "porthole"), 2)} ms = ${fmt(vsWsf(k), 2)}× websockify's`,
  );
  add("5. Compression decided by measurement, per kind of stream", has(Object.values(r.compression)[0]) ? comp.decided : null, `${comp.summary}; why in the compression section`);
  add(
    "6. What it costs on Cloudflare: a model from observed counts",
    has(r.cost.site) && has(r.cost.idle) ? cost.observed : null,
    cost.summary,
  );
  const limit = r.run === "quick" ? 180 : 600;
  add(
    `7. Every verdict written; \`--quick\` under 3 minutes, the full run under 10 (this run: ${r.run === "partial" ? "partial, not judged" : r.run})`,
    r.run === "partial" ? null : r.seconds < limit,
    `${num(r.seconds / 60, 1)} min`,
  );
  const cap = capacityTables(r);
  add(
    "Capacity of one site (measured limits written): typical consoles (the recorded desktop session at its pace) stepped up until delivery, their screen updates or the probe fall off",
    cap.typical.length ? cap.last !== undefined : null,
    cap.summary,
    "not even the first step held: see the capacity table for why.",
  );
  if (has(r.scale.porthole)) {
    add(`Scale (kept): ${r.config.scaleConsoles} idle consoles through one connector, ≤ 64 KiB of connector memory each`, allOpened(r.scale.porthole) && connectorPerConsole(r.scale).median <= 64, `${num(connectorPerConsole(r.scale).median, 1)} KiB each`);
  }
  for (const path of ["porthole", "porthole-dev"]) {
    const rows = r.stall[path];
    if (!has(rows)) continue;
    const g = (key: string) => stallGrowth(rows, key).median;
    const ok = g("connector RSS") <= STREAM_WINDOW_BYTES / KiB && g("edge RSS") <= STREAM_WINDOW_BYTES / KiB && rows!.every((x) => x.echo.ok);
    add(`Stalled reader (kept), ${PATH_LABEL[path as PathId]}: connector and edge growth ≤ one window (${STREAM_WINDOW_BYTES / KiB} KiB) per stalled stream`, ok, `connector +${num(g("connector RSS"))} KiB, edge +${num(g("edge RSS"))} KiB`);
  }
  return out.join("\n");
}

export function writeReport(r: Results, out: { doc: string | null; analysis: string }): { markdown: string; table: string } {
  const cost = costTables(r.cost);
  const comp = compression(r);
  const cap = capacityTables(r);
  const targetList = targets(r, cost, comp);
  const { machine: m, config: c } = r;
  const values: Record<string, string> = {
    date: r.date.slice(0, 16).replace("T", " "),
    minutes: num(r.seconds / 60, 1),
    runs: String(c.runs),
    keyRuns: String(c.keyRuns),
    compressionRuns: String(c.compressionRuns),
    throughputMiB: String(c.throughputBytes / MiB),
    echoSamples: num(c.echoSamples),
    echoWarmup: String(c.echoWarmup),
    keySamples: String(c.keySamples),
    replayMiB: String(c.replayBytes / MiB),
    costSeconds: String(c.costSeconds),
    costIdleSeconds: String(c.costIdleSeconds),
    cpuTick: num(0.01 / (c.throughputBytes / 1024 ** 3), 2),
    costRate: String(COST_RATE / 1e6),
    scaleConsoles: String(c.scaleConsoles),
    stallClients: String(c.stallClients),
    stallSeconds: String(c.stallSeconds),
    window: String(STREAM_WINDOW_BYTES / KiB),
    recordedAt: r.recordedAt ?? "not recorded",
    collector: r.collector ? `${r.collector.main ? "**on**" : "off"} for the wrangler dev edge${r.collector.defaults === null ? "" : `, ${r.collector.defaults ? "on" : "**off**"} for the wrangler-defaults diagnostic`}` : "unknown",
    targets: targetList,
    throughput: throughputTable(r),
    latency: latencyTable(r.latency),
    keys: latencyTable(r.keys),
    compression: comp.table,
    decisions: comp.decisions,
    costObserved: cost.table,
    costModel: cost.model,
    stall: stallTable(r),
    scale: scaleTable(r),
    capacityTypical: cap.typicalTable,
    capacityBulk: cap.bulkTable,
    capacitySteps: c.capacitySteps?.join(", ") ?? "–",
    capacityBulkSteps: c.capacityBulk?.join(", ") ?? "–",
    capacitySeconds: String(c.capacitySeconds ?? "–"),
    capacityWarmSeconds: String(c.capacityWarmSeconds ?? "–"),
    capacityEchoSamples: String(c.capacityEchoSamples ?? "–"),
    capacityBudget: String(c.capacityBudgetSeconds ?? "–"),
    sessionRate: num(cap.rate / 1e3),
    deliveredMin: num(DELIVERED_MIN * 100),
    echoMax: num(ECHO_P99_MAX_MS),
    lateMax: num(LATE_P99_MAX_MS),
    extrapolatedFrom: cap.last ? num(cap.last.consoles) : "–",
    runtimeSlope: num(cap.runtime.b * 1000, 2),
    runtimeIntercept: num(cap.runtime.a * 100, 1),
    connectorSlope: num(cap.connector.b * 1000, 2),
    connectorPerCore: approx(cap.connectorPerCore),
    messagesSlope: num(cap.messages.b, 1),
    memorySlope: num(cap.memory.b / KiB),
    objectMessages: num(OBJECT_MESSAGES_PER_SECOND),
    perCore: approx(cap.perCore),
    byMessages: approx(cap.byMessages),
    byMemory: approx(cap.byMemory),
    analysis: existsSync(out.analysis) ? readFileSync(out.analysis, "utf8").trim() : "",
    machine: table(["", ""], [["CPU", `${m.cpu}, ${m.nproc} cores (\`nproc\`)`], ["memory", `${num(m.memoryGiB, 1)} GiB`], ["kernel", m.kernel], ["Node", m.node], ["wrangler / workerd", `${m.wrangler} / ${m.workerd}`], ["websockify", `${m.websockify} (Debian package; Python ${m.python})`], ["Porthole commit", m.commit], ["date", r.date]]),
    command: r.command,
    errors: r.errors.length ? `\n### Failed measurements\n\n${r.errors.map((e) => `- ${e.replace(/\n/g, " ")}`).join("\n")}\n` : "",
  };
  const template = readFileSync(new URL("./report.md", import.meta.url), "utf8");
  const markdown = template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`bench/report.md: unknown placeholder {{${key}}}`);
    return values[key]!;
  });
  if (out.doc) writeFileSync(out.doc, markdown);
  return { markdown, table: `## Targets\n\n${targetList}\n\n${values.throughput}\n\n${values.latency}\n\n${values.keys}\n\n${values.compression}\n\n${values.costObserved}\n\n${values.costModel}\n\n${values.stall}\n\n${values.scale}\n\n${values.capacityTypical}\n\n${values.capacityBulk}` };
}
