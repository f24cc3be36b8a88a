/**
 * The benchmark's relay sections: throughput, latency (idle and beside a bulk neighbour), keys,
 * and compression (recorded segments replayed through each kind of client).
 */
import { type BulkResult, ChildJob, type DownloadResult, type EchoResult, runJob } from "./client.ts";
import type { Target } from "./rfb-conn.ts";
import { cpuMeter, dropDefaults, dropRecorded, type PathId, runQueueMeter, target, type World } from "./paths.ts";
import { haveRecording, loadSegment } from "./recording.ts";
import { type CompressionRow, type Config, type LatencyRow, type Percentiles, pct, perGiB, porthole, type Section, seconds, sleep, split, type ThroughputRow } from "./section-kit.ts";

export const throughput: Section<ThroughputRow> = {
  name: "throughput",
  lanes: (w) => [
    "direct",
    "websockify:plain",
    "websockify:browser",
    ...porthole(w).flatMap((p) => [`${p}:credit`, `${p}:plain`, `${p}:browser`]),
    // What a browser gets where an operator turned compression on (VIEWER_WS_COMPRESSION=on).
    ...(w.sites["porthole-deflate"] ? ["porthole-deflate:browser"] : []),
    // The same as porthole:credit and porthole:browser with every console recorded to R2.
    ...(w.sites["porthole-recorded"] ? ["porthole-recorded:credit", "porthole-recorded:browser"] : []),
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

export const latency: Section<LatencyRow> = {
  name: "latency",
  lanes: (w) => ["direct", "websockify", ...porthole(w)],
  // The recorded site was throughput's only: its connector stops before the latency lanes.
  setup: dropRecorded,
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

export const keys: Section<LatencyRow> = {
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
export const compression: Section<CompressionRow> = {
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

