/** The wording of docs/benchmarks.md: the page as one template over the figures report.ts computes. */
import { STREAM_WINDOW_BYTES } from "../shared/protocol/limits.ts";
import type { Figures } from "./report.ts";
import type { Results } from "./sections.ts";

const MiB = 1024 * 1024;
/** Text only when a figure was measured. */
const when = (cond: unknown, text: () => string) => (cond ? text() : "");
const has = (rows: unknown[] | undefined) => (rows?.length ?? 0) > 0;

export function num(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return "–";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const mark = (ok: boolean | null) => (ok === null ? "– not measured" : ok ? "✅ met" : "❌ missed");

export interface Parts {
  chart: string;
  results: string;
  cpu: string;
  variants: string | null;
  analysis: string;
}

function targets(r: Results, x: Figures): string {
  const { t, l, f, sc, st, verdicts: v } = x;
  const m = (p: Parameters<typeof x.growth>[0], key: string) => num(x.growth(p, key).median);
  return `- Throughput ≥ websockify's and ≥ 50% of direct TCP: **${mark(v.throughput)}**${when(has(t.porthole), () => ` (Porthole ${num(x.thr("porthole").median)} MB/s = ${num(x.ratio("porthole", "websockify").median, 2)}× websockify, ${num(x.ratio("porthole", "direct").median * 100)}% of direct TCP)`)}.
- Added latency p50 ≤ 1 ms over websockify: **${mark(v.latency)}**${when(has(l.porthole), () => ` (+${num(x.addedP50.median, 3)} ms)`)}.
- Fairness: echo p99 under a neighbour's bulk download ≤ 10 ms and no worse than websockify's in the same run: **${mark(v.fairness)}**${when(has(f.porthole), () => ` (${num(x.fair("porthole", "p99").median, 2)} ms vs websockify ${num(x.fair("websockify", "p99").median, 2)} ms; Porthole no worse in ${x.fairVsWsf.filter((d) => d <= 0).length} of ${x.fairVsWsf.length} runs)`)}.
- ${r.config.scaleConsoles} idle consoles through one connector, ≤ 64 KiB of connector memory each: **${mark(v.scale)}**${when(has(sc.porthole), () => ` (${x.allOpened ? "all opened" : "NOT all opened"}; ${num(x.connectorPerConsole.median, 1)} KiB of connector memory each)`)}.
- Stalled reader: connector and edge growth ≤ one window (${STREAM_WINDOW_BYTES / 1024} KiB): **${mark(v.stall)}**${when(has(st.porthole), () => ` (connector +${m("porthole", "connector RSS")} KiB, edge +${m("porthole", "edge RSS")} KiB, of which the runtime +${m("porthole", "edge runtime RSS")} KiB)`)}${when(has(st["porthole-runtime"]), () => `; without wrangler's dev proxy: **${mark(x.stallRuntime)}** (connector +${m("porthole-runtime", "connector RSS")} KiB, edge +${m("porthole-runtime", "edge RSS")} KiB)`)}.`;
}

function profile(r: Results): string {
  const p = r.profile;
  if (!p) return "";
  const side = (title: string, s: NonNullable<Results["profile"]>["edge"]) => `**${title}**: ${num(s.totalMs)} ms sampled, ${num(s.idleMs)} ms idle.

| self ms | share of busy | function | where |
|---|---|---|---|${s.functions.map((fn) => `\n| ${num(fn.selfMs, 1)} | ${num(fn.share * 100, 1)}% | \`${fn.name}\` | ${fn.where} |`).join("")}
`;
  return `## CPU profile of this run

Taken with \`--profile\` during one ${r.config.throughputBytes / MiB} MiB Porthole download (${num(p.mbs)} MB/s under the profiler). Self time per function; the .cpuprofile files open in Chrome DevTools.

${side("Edge (the Worker's isolate, via wrangler's inspector)", p.edge)}
${side("Connector (node --inspect)", p.connector)}`;
}

export function page(r: Results, x: Figures, parts: Parts): string {
  const { machine: m, config: c } = r;
  const collector = r.collector;
  return `# Benchmarks

Porthole puts two hops (the edge's site object and the connector) between a viewer and a console
where websockify puts one. This page is written by \`npm run bench\` (\`bench/\`), which runs the same
workloads through three paths in one process tree on one machine, interleaved run by run so that
machine noise hits them alike:

1. **direct TCP** to the upstream: the limit;
2. **websockify**: Debian's \`websockify\` in front of the upstream, what a user would otherwise pick;
3. **Porthole**: client → \`wrangler dev\` edge (Worker + site Durable Object) → connector (\`vnc\` upstream) → upstream.

The upstream is a synthetic RFB server (\`bench/upstream.ts\`, its own process; the edge and the
connector follow every console's RFB stream): after the handshake (security None) the client's first
message picks *source n bytes* (random, incompressible pixels in raw framebuffer updates) or *echo*
(one Bell back for every byte of the client's key events). Clients
(\`bench/client.ts\`, one process per measuring client) speak WebSocket like noVNC: binary
messages, no compression. Porthole's clients use the credit subprotocol \`porthole.credit.v1\`
exactly as the console page does (a text message with the byte count after each 128 KiB
consumed); websockify's clients speak plain binary WebSocket.

Measured ${r.date.slice(0, 16).replace("T", " ")} UTC, ${num(r.seconds / 60, 1)} minutes.
Every figure is the **median of ${c.runs} runs (scale: ${c.scaleRuns}, stall: ${c.stallRuns}) (min–max across runs)** unless it says otherwise; latency
percentiles are taken within each run over ${num(c.echoSamples)} samples (after ${c.echoWarmup} warm-up round trips),
then the median across runs is reported. MB/s means 10⁶ bytes per second.

![Throughput, latency and fairness by path](${parts.chart})

## Results

${parts.results}

## Targets

${targets(r, x)}

## Where the CPU goes

CPU seconds per GiB moved, per process, measured from \`/proc/<pid>/stat\` around each throughput
run (median of runs). On a ${m.nproc}-core machine every hop competes with the client and the
upstream for the same cores, so the sum is what caps a single stream.

${parts.cpu}

${when(parts.variants, () => `### Diagnostic variants

Both run interleaved with the main paths, on the same upstream:

- **Porthole, no dev proxy**: the same edge and connector code, but the connector and the clients use
  the socket of the workerd process that runs the Worker, skipping the second workerd that
  \`wrangler dev\` puts in front of it (its dev proxy; production has no such hop).
- **Porthole, wrangler defaults**: a second \`wrangler dev\` left with its defaults, i.e. with wrangler's
  local observability collector on (\`X_LOCAL_OBSERVABILITY\`), which traces every Durable Object
  event (every WebSocket message) into a local SQLite store with an fsync per commit. The main
  Porthole path runs with \`X_LOCAL_OBSERVABILITY=false\` (as the test harness, \`npm run edge\` and
  \`npm start\` start wrangler): the collector is a development tool, and with it on the numbers
  measure wrangler, not Porthole.${when(collector, () => ` This run: collector ${collector!.main ? "**on**" : "off"} for the main path, ${collector!.defaults === null ? "variant not run" : collector!.defaults ? "on" : "**off**"} for the variant.`)}

${parts.variants}
`)}
${when(parts.analysis, () => `${parts.analysis}\n`)}
${profile(r)}
## Method

- **Throughput**: one stream downloads ${c.throughputBytes / MiB} MiB from the upstream's source mode; the clock runs from
  the request to the last byte. Porthole: one console per run (one \`POST /api/consoles\`).
- **Latency**: one connection in echo mode; 16 bytes out (two key events), wait for 16 bytes back, repeat.
- **Fairness**: a second client downloads flat out (source mode, unbounded) through the same relay
  (for Porthole: the same connector and site object) from 0.5 s before until the end of ${num(c.fairnessSamples)} echo
  round trips on another connection.
- **Scale**: ${c.scaleConsoles} connections opened ${c.scaleConcurrency} at a time, each checked with one echo, then left idle 3 s; memory is
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
- Each section (\`bench/sections.ts\`) is a setup, a measurement of one path in one run and a verdict;
  the targets' limits (the credit window) are the protocol's own (\`shared/protocol/limits.ts\`).
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
npm run bench                          # everything with the diagnostic variants, about 7 minutes on 2 cores; rewrites this page
npm run bench -- --quick               # fewer runs and smaller sizes, no variants, prints the table only
npm run bench -- --sections throughput,latency --runs 3    # pick sections: throughput, latency, fairness, scale, stall
npm run bench -- --no-variants         # without the diagnostic variants (--variants adds them to any run)
npm run bench -- --profile             # also CPU-profile the edge and the connector during one download
\`\`\`

This run: \`${r.command}\`.
${when(r.errors.length, () => `\n### Failed measurements\n\n${r.errors.map((e) => `- ${e.replace(/\n/g, " ")}`).join("\n")}\n`)}`;
}
