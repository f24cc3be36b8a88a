/**
 * The capacity section (issue #22, item 3): how many consoles, and how many MB/s in total, one site
 * object and one connector carry before delivery or latency falls off, and what each console costs.
 *
 * Lanes, each a series of steps on the production-like path (`porthole`: one site, one object, one
 * connector):
 *   typical  N consoles, each replaying the recorded desktop session (bench/recording.ts, SESSION)
 *            at its recorded pace in a loop, their phases spread evenly over the session so the
 *            load is steady; N steps up (config capacitySteps) until a step falls off or the lane's
 *            time budget is spent
 *   bulk     k consoles downloading flat out at once (config capacityBulk): the aggregate ceiling
 * In every step one more console, the probe, runs keystroke echo round trips (as the latency
 * section) through the same object and connector. A step falls off when the consoles get less than
 * DELIVERED_MIN of what the recording's pace offered in the window, when the probe's echo p99
 * exceeds ECHO_P99_MAX_MS (typing feels broken), when the typical consoles' screen updates arrive
 * more than LATE_P99_MAX_MS after they were due at p99 (the screen visibly lags: the bytes can all
 * arrive while every update comes late), or when a console fails to open or is cut.
 */
import { ChildJob, type BulkResult, type ConsolesResult, type EchoResult } from "./client.ts";
import { cpuMeter, dropExtras, dropRecorded, memoryProbe, runQueueMeter, target, waitSettled, type World } from "./paths.ts";
import { cpuSeconds, machineCpuSeconds } from "./procs.ts";
import type { Target } from "./rfb-conn.ts";
import { loadSegment, SESSION } from "./recording.ts";
import { type CapacityRow, type CapacityStep, type Config, log, pct, type Section, seconds, sleep } from "./section-kit.ts";

/** The fall-off criterion: delivered below this share of offered, or screen updates (p99) or the probe's echo (p99) later than these. */
export const DELIVERED_MIN = 0.95;
export const ECHO_P99_MAX_MS = 50;
export const LATE_P99_MAX_MS = 100;
/** Typical consoles per client process: one process per console would load the machine more than the relay. */
const CONSOLES_PER_CLIENT = 100;
const PATH = "porthole";

/** Whether a step held: everything opened and stayed open, delivery kept pace, the probe answered in time. */
export function held(s: CapacityStep): boolean {
  const kept = !Number.isFinite(s.offered) || s.delivered >= DELIVERED_MIN * s.offered;
  const onTime = s.late === null || s.late.p99 / 1000 <= LATE_P99_MAX_MS;
  return !s.error && s.opened === s.consoles && s.closed === 0 && kept && onTime && s.echo !== null && s.echo.p99 / 1000 <= ECHO_P99_MAX_MS;
}

/** Why a step fell off, in words (for the log and the report). */
export function why(s: CapacityStep): string {
  const out: string[] = [];
  if (s.error) out.push(s.error);
  if (s.opened < s.consoles) out.push(`${s.consoles - s.opened} consoles did not open`);
  if (s.closed) out.push(`${s.closed} cut (${s.firstClose ?? "?"})`);
  if (Number.isFinite(s.offered) && s.delivered < DELIVERED_MIN * s.offered) out.push(`delivered ${((100 * s.delivered) / s.offered).toFixed(0)} % of offered`);
  if (s.late && s.late.p99 / 1000 > LATE_P99_MAX_MS) out.push(`screen updates late p99 ${(s.late.p99 / 1000).toFixed(0)} ms`);
  if (!s.echo) out.push(`probe failed: ${s.echoError ?? "?"}`);
  else if (s.echo.p99 / 1000 > ECHO_P99_MAX_MS) out.push(`probe echo p99 ${(s.echo.p99 / 1000).toFixed(1)} ms`);
  return out.join(", ");
}

/** Session bytes per second one typical console is offered. */
export function typicalRate(): number {
  const seg = loadSegment(SESSION);
  return seg.bytes.length / (seg.ms / 1000);
}

/** The load of one step: started, then marked at the window's start, then stopped. */
interface Load {
  pids(): number[];
  mark(): Promise<void>;
  stop(): Promise<{ opened: number; offered: number; delivered: number; lateUs: number[]; closed: number; firstClose: string | null }>;
  kill(): void;
  /** Seconds to get the tickets, and to open every console and start its workload. */
  ticketSeconds: number;
  openSeconds: number;
}

async function typicalLoad(w: World, n: number): Promise<Load> {
  // Tickets first (one POST /api/consoles each, single-use, valid 60 s), a few at a time.
  const t0 = process.hrtime.bigint();
  const targets: Target[] = [];
  while (targets.length < n) targets.push(...(await Promise.all(Array.from({ length: Math.min(50, n - targets.length) }, () => target(w, PATH, "credit")))));
  const ticketSeconds = seconds(t0);
  const t1 = process.hrtime.bigint();
  const { ms } = loadSegment(SESSION);
  const jobs: ChildJob<ConsolesResult>[] = [];
  for (let i = 0; i < n; i += CONSOLES_PER_CLIENT) {
    const share = targets.slice(i, i + CONSOLES_PER_CLIENT);
    jobs.push(new ChildJob<ConsolesResult>({ kind: "consoles", targets: share, segment: SESSION, phases: share.map((_, j) => ((i + j) * ms) / n) }));
  }
  await Promise.all(jobs.map((j) => j.event("started", 120_000)));
  return {
    ticketSeconds,
    openSeconds: seconds(t1),
    pids: () => jobs.map((j) => j.child.pid!),
    mark: async () => {
      for (const j of jobs) j.child.send("mark");
      await Promise.all(jobs.map((j) => j.event("marked")));
    },
    stop: async () => {
      const rs = await Promise.all(jobs.map((j) => j.stop()));
      const sum = (f: (r: ConsolesResult) => number) => rs.reduce((a, r) => a + f(r), 0);
      return {
        opened: sum((r) => r.opened),
        offered: sum((r) => r.stopped.due - r.marked.due),
        delivered: sum((r) => r.stopped.got - r.marked.got),
        lateUs: rs.flatMap((r) => r.stopped.lateUs),
        closed: sum((r) => r.stopped.closed),
        firstClose: rs.map((r) => r.stopped.firstClose).find((x) => x !== null) ?? null,
      };
    },
    kill: () => jobs.forEach((j) => j.kill()),
  };
}

async function bulkLoad(w: World, k: number): Promise<Load> {
  const t0 = process.hrtime.bigint();
  const jobs: ChildJob<BulkResult>[] = [];
  for (let i = 0; i < k; i++) jobs.push(new ChildJob<BulkResult>({ kind: "bulk", target: await target(w, PATH, "credit") }));
  await Promise.all(jobs.map((j) => j.event("started")));
  await sleep(500); // every stream at full speed
  // A bulk job counts from its start: the window's bytes are the growth of that count, read at the mark.
  const openSeconds = seconds(t0);
  let from = process.hrtime.bigint();
  return {
    ticketSeconds: 0,
    openSeconds,
    pids: () => jobs.map((j) => j.child.pid!),
    mark: async () => void (from = process.hrtime.bigint()),
    stop: async () => {
      const rs = await Promise.all(jobs.map((j) => j.stop()));
      // Each stream's rate over its whole run, times the window: bulk streams are steady after their start.
      const window = seconds(from);
      return {
        opened: rs.length,
        offered: Number.NaN,
        delivered: rs.reduce((a, r) => a + (r.bytes / r.seconds) * window, 0),
        lateUs: [],
        closed: rs.filter((r) => r.closed !== null).length,
        firstClose: rs.find((r) => r.closed !== null)?.closed ?? null,
      };
    },
    kill: () => jobs.forEach((j) => j.kill()),
  };
}

async function step(w: World, lane: string, n: number, c: Config): Promise<CapacityStep> {
  const probe = memoryProbe(w, PATH);
  const t0 = process.hrtime.bigint();
  await waitSettled(probe, 30_000);
  const settleSeconds = seconds(t0);
  const before = await probe.read();
  const load = lane === "bulk" ? await bulkLoad(w, n) : await typicalLoad(w, n);
  const echoTarget = await target(w, PATH, "credit");
  let echoJob: ChildJob<EchoResult> | null = null;
  try {
    await sleep(c.capacityWarmSeconds * 1000);
    const clientCpu = () => [...load.pids(), ...(echoJob ? [echoJob.child.pid!] : [])].reduce((a, p) => a + cpuSeconds(p), 0);
    const site = w.sites[PATH]!;
    const sent = async () => (await site.connector.metrics()).porthole_connector_messages_sent_total ?? Number.NaN;
    const [m0, waited, meter, machine0] = [await sent(), runQueueMeter(w, PATH), cpuMeter(w, PATH), machineCpuSeconds()];
    await load.mark();
    const w0 = process.hrtime.bigint();
    echoJob = new ChildJob<EchoResult>({ kind: "echo", target: echoTarget, samples: c.capacityEchoSamples, warmup: 20 });
    const c0 = clientCpu();
    // The window: at least capacitySeconds, and until the probe's round trips are done.
    const [echo] = await Promise.all([echoJob.result.then((e) => ({ us: e.us, error: null }), (err: unknown) => ({ us: null, error: String(err) })), sleep(c.capacitySeconds * 1000)]);
    // Memory and messages with every console still open; then the meters and the load's counts,
    // read back to back so that the CPU, the bytes and the window's length cover the same time.
    const [after, m1] = [await probe.read(), await sent()];
    const [cpu, machine1, runQueue, windowSeconds] = [{ clients: clientCpu() - c0, ...meter() }, machineCpuSeconds(), waited(), seconds(w0)];
    const got = await load.stop();
    return {
      consoles: n,
      opened: got.opened,
      seconds: windowSeconds,
      setupSeconds: { settle: settleSeconds, tickets: load.ticketSeconds, open: load.openSeconds },
      offered: got.offered,
      delivered: got.delivered,
      late: got.lateUs.length ? pct(got.lateUs) : null,
      echo: echo.us ? pct(echo.us) : null,
      echoError: echo.error,
      cpu,
      runQueue,
      machineBusy: (machine1.busy - machine0.busy) / (machine1.total - machine0.total),
      connectorMessages: m1 - m0,
      before,
      after,
      closed: got.closed,
      firstClose: got.firstClose,
    };
  } finally {
    load.kill();
    echoJob?.kill();
  }
}

const NOT_RUN: CapacityStep = {
  consoles: 0,
  opened: 0,
  seconds: Number.NaN,
  offered: Number.NaN,
  delivered: Number.NaN,
  late: null,
  echo: null,
  echoError: null,
  cpu: {},
  runQueue: Number.NaN,
  machineBusy: Number.NaN,
  connectorMessages: Number.NaN,
  before: {},
  after: {},
  closed: 0,
  firstClose: null,
};

export const capacity: Section<CapacityRow> = {
  name: "capacity",
  lanes: () => ["typical", "bulk"],
  async setup(w) {
    // Only the main edge and its site stay: the others' idle processes would share the cores.
    await dropExtras(w);
    await dropRecorded(w);
  },
  runs: () => 1,
  async measure(w, lane, c) {
    const t0 = process.hrtime.bigint();
    const steps: CapacityStep[] = [];
    for (const n of lane === "bulk" ? c.capacityBulk : c.capacitySteps) {
      if (steps.length && seconds(t0) > c.capacityBudgetSeconds) {
        log(`capacity ${lane}: time budget spent before ${n} consoles`);
        break;
      }
      // A step that could not even run (tickets, a client process) is a fall-off too, and the
      // steps before it stay in the row.
      const s = await step(w, lane, n, c).catch((err: unknown): CapacityStep => ({ ...NOT_RUN, consoles: n, error: String(err) }));
      steps.push(s);
      log(`capacity ${lane} ${n}: ${stepLine(s)}${s.setupSeconds ? ` [settle ${s.setupSeconds.settle.toFixed(1)} s, tickets ${s.setupSeconds.tickets.toFixed(1)} s, open ${s.setupSeconds.open.toFixed(1)} s]` : ""}`);
      // One step past the knee says where it is; more would only cost time.
      if (!held(s)) break;
    }
    return lane === "bulk" ? { steps } : { steps, rate: typicalRate() };
  },
  line: (row) => `${row.steps.length} steps, ${row.steps.filter(held).length} held`,
};

function stepLine(s: CapacityStep): string {
  const mbs = (b: number) => (b / s.seconds / 1e6).toFixed(2);
  if (s.error) return `FELL OFF: ${s.error}`;
  const cores = Object.entries(s.cpu).map(([k, v]) => `${k} ${((100 * v) / s.seconds).toFixed(0)} %`).join(", ");
  return (
    `${mbs(s.delivered)} of ${!Number.isFinite(s.offered) ? "∞" : mbs(s.offered)} MB/s, echo p99 ${s.echo ? (s.echo.p99 / 1000).toFixed(1) : "–"} ms` +
    `${s.late ? `, chunks late p99 ${(s.late.p99 / 1000).toFixed(1)} ms` : ""}; CPU ${cores} (machine ${(100 * s.machineBusy).toFixed(0)} % busy)${held(s) ? "" : `; FELL OFF: ${why(s)}`}`
  );
}
