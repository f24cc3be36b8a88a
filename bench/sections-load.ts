/**
 * The benchmark's load sections: cost (messages, alarms and wakes per console hour), scale (many
 * idle consoles at once) and stall (viewers that stop reading).
 */
import { STREAM_WINDOW_BYTES } from "../shared/protocol/limits.ts";
import { type BulkResult, ChildJob, type DownloadResult, type EchoResult, openEchoOnce, runJob, type StallResult } from "./client.ts";
import type { Conn, Target } from "./rfb-conn.ts";
import { dropExtras, memoryProbe, type PathId, target, waitSettled } from "./paths.ts";
import { median, percentile, pick } from "./stats.ts";
import { type CostRow, has, KiB, type Lanes, log, MiB, type ScaleRow, type Section, seconds, sleep, type StallRow } from "./section-kit.ts";

/** The console hour at this rate (bytes per second) for the cost model. */
export const COST_RATE = 1e6;
export const cost: Section<CostRow> = {
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

export const scale: Section<ScaleRow> = {
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

export const stall: Section<StallRow> = {
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

