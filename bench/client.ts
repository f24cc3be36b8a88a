/**
 * The benchmark's measuring jobs: downloads, replays, echo and key round trips, bulk neighbours,
 * stalled viewers, each over a connection of `rfb-conn.ts`. Jobs that measure run in a child
 * process of their own (`node bench/client.ts`, driven over IPC), so a bulk download and an echo
 * probe never share an event loop, and the orchestrator's own work never lands in a measurement.
 */
import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadSegment } from "./recording.ts";
import { type Conn, keyPress, listen, open, request, type Target } from "./rfb-conn.ts";

const now = (): bigint => process.hrtime.bigint();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const usSince = (t0: bigint) => Number(now() - t0) / 1e3;

// ---- jobs ------------------------------------------------------------------------------------------

export type Job =
  | { kind: "download"; target: Target; bytes: number }
  /** A recorded segment replayed flat out (looped to `bytes`), or once at its pace (`paced`). */
  | { kind: "replay"; target: Target; segment: string; bytes: number; paced?: boolean }
  | { kind: "echo"; target: Target; samples: number; warmup: number }
  /** Keystroke to pixels on a real desktop: key down+up with an update request outstanding. */
  | { kind: "keys"; target: Target; samples: number }
  /** Downloads (or holds a paced stream, `request`) until told to stop; reports what it got. */
  | { kind: "bulk"; target: Target; request?: string }
  /** Reads `warmBytes`, then stops reading and crediting; stays until told to stop. */
  | { kind: "stall"; target: Target; bytes: number; warmBytes: number }
  /**
   * Many consoles in one process (the capacity section's typical load): each replays a recorded
   * segment at its pace in a loop, joining it `phases[i]` ms in, until told to stop; "mark" asks
   * for the counters so far.
   */
  | { kind: "consoles"; targets: Target[]; segment: string; phases: number[] };

export interface DownloadResult {
  bytes: number;
  seconds: number;
  /** CPU seconds the client process used for the transfer. */
  cpu: number;
  /** Bytes the client read from its socket (/proc/self/io), i.e. after compression. */
  wire: number;
  deflated: boolean;
  /** Fence requests answered. */
  fences: number;
  /** Paced replay: each chunk's delivery time after the upstream was due to send it (µs). */
  lateUs?: number[];
}
export interface EchoResult {
  /** Round trips (or keystroke to pixels) in microseconds, in the order measured. */
  us: number[];
}
export interface BulkResult {
  bytes: number;
  seconds: number;
  closed: string | null;
  /** Messages the client sent (credit, fence answers): the edge is billed for these. */
  sent: number;
}
/** What a "consoles" job's consoles got and were due by a moment (a mark, or the stop). */
export interface ConsolesCount {
  /** Bytes received, and bytes the recorded pace had the upstream send by then, over all consoles. */
  got: number;
  due: number;
  /** Since the mark: each chunk's arrival in full after its due time (µs), over all consoles. */
  lateUs: number[];
  /** Consoles whose socket closed. */
  closed: number;
  firstClose: string | null;
}
export interface ConsolesResult {
  opened: number;
  marked: ConsolesCount;
  stopped: ConsolesCount;
}
export interface StallResult {
  received: number;
  closed: string | null;
}

/** Opens a connection, asks for echo and checks one round trip: one "console" of the scale test. */
export async function openEchoOnce(target: Target, timeoutMs = 30_000): Promise<Conn> {
  const conn = await open(target, { timeoutMs });
  await new Promise<void>((resolve, reject) => {
    let bells = 0;
    const timer = setTimeout(() => reject(new Error("no echo")), timeoutMs);
    conn.onClose = (why) => (clearTimeout(timer), reject(new Error(`closed before the echo: ${why}`)));
    listen(conn, { bell: () => ++bells === 16 && (clearTimeout(timer), resolve()) });
    conn.send(Buffer.concat([request("E"), keyPress()]));
  }).catch((err: unknown) => {
    conn.close();
    throw err;
  });
  conn.onClose = () => {};
  return conn;
}

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const readBytes = () => Number(/^rchar: (\d+)/m.exec(readFileSync("/proc/self/io", "utf8"))?.[1] ?? 0);

async function download(job: Extract<Job, { kind: "download" | "replay" }>): Promise<DownloadResult> {
  const replay = job.kind === "replay";
  const seg = replay ? loadSegment(job.segment) : null;
  const conn = await open(job.target, { replay });
  const start = now() + 50_000_000n; // paced: the first chunk 50 ms from now
  const total = seg && job.kind === "replay" && job.paced ? seg.bytes.length : job.bytes;
  return new Promise((resolve, reject) => {
    let got = 0;
    const lateUs: number[] = [];
    let chunk = 0;
    const [c0, r0, t0] = [cpuNow(), readBytes(), now()];
    const count = (n: number) => {
      got += n;
      // Paced: a chunk is delivered once every byte up to its end has arrived.
      while (seg && chunk < seg.chunks.length && got >= seg.chunks[chunk]![1] && job.kind === "replay" && job.paced) {
        lateUs.push(Number(now() - start) / 1e3 - seg.chunks[chunk++]![2] * 1e3);
      }
      if (got < total) return;
      const seconds = Number(now() - t0) / 1e9;
      conn.onClose = () => {};
      conn.onData = () => {};
      const result = { bytes: got, seconds, cpu: cpuNow() - c0, wire: readBytes() - r0, deflated: conn.deflated, fences: conn.fences, lateUs };
      conn.close();
      resolve(result);
    };
    conn.onClose = (why) => reject(new Error(`closed after ${got} of ${total} bytes: ${why}`));
    // A replay's stream is Tight/ZRLE, which only the edge frames: its client counts bytes (credit kind).
    if (replay) conn.onData = (d) => count(d.length);
    else listen(conn, { pixels: count });
    for (const d of conn.early.splice(0)) conn.onData(d);
    if (job.kind === "replay") conn.send(request(`R${job.segment}${job.paced ? `@${start}` : `:${job.bytes}`}`));
    else conn.send(request(`S${job.bytes}`));
  });
}

async function echo(target: Target, samples: number, warmup: number, timeoutMs = 10_000): Promise<EchoResult> {
  const conn = await open(target);
  const us: number[] = [];
  let closed: string | null = null;
  conn.onClose = (why) => (closed = why);
  let waiting: (() => void) | null = null;
  let bells = 0;
  listen(conn, {
    bell: () => {
      if (++bells < 16 || !waiting) return;
      bells = 0;
      const w = waiting;
      waiting = null;
      w();
    },
  });
  conn.send(request("E"));
  for (let i = 0; i < warmup + samples; i++) {
    if (closed) throw new Error(`echo socket closed after ${i} round trips: ${closed}`);
    const t0 = now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        conn.close();
        reject(new Error(`echo round trip ${i} of ${warmup + samples} got no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      waiting = () => (clearTimeout(timer), resolve());
      conn.send(keyPress());
    });
    if (i >= warmup) us.push(usSince(t0));
  }
  conn.onClose = () => {};
  conn.close();
  return { us };
}

/**
 * Keystroke to pixels on a desktop whose focused xterm runs `cat`: with an incremental update
 * request outstanding (sent after every update, as noVNC does), a key's down+up, then the time
 * until the FramebufferUpdate that shows the echoed character has arrived in full.
 */
async function keys(target: Target, samples: number, timeoutMs = 10_000): Promise<EchoResult> {
  const conn = await open(target);
  let updated: (() => void) | null = null;
  const fur = (incremental: boolean) => {
    const b = Buffer.alloc(10);
    b.set([3, incremental ? 1 : 0]);
    b.writeUInt16BE(4096, 6);
    b.writeUInt16BE(4096, 8);
    return b;
  };
  let lastUpdate = now();
  listen(conn, {
    update: () => {
      lastUpdate = now();
      conn.send(fur(true));
      updated?.();
    },
  });
  const pointer = Buffer.from([5, 0, 0, 40, 0, 40]); // over the xterm: X gives it the keyboard focus
  conn.send(Buffer.concat([pointer, fur(false)]));
  const us: number[] = [];
  for (let i = 0; i < samples + 5; i++) {
    // A quiet screen first (nothing left from the previous key), then the key.
    while (Number(now() - lastUpdate) / 1e6 < 20) await sleep(5);
    const t0 = now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`keystroke ${i}: no update in ${timeoutMs} ms`)), timeoutMs);
      updated = () => ((updated = null), clearTimeout(timer), resolve());
      conn.send(keyPress(i % 50 === 49 ? 0xff0d : 0x61 + (i % 26))); // a Return now and then: short lines
    });
    if (i >= 5 && i % 50 !== 49) us.push(usSince(t0));
  }
  conn.close();
  return { us };
}

/**
 * Many paced consoles in this one process: a process per console would cost the machine more than
 * the relay does at a few hundred consoles. Due bytes and lateness follow the same schedule as the
 * upstream's looped replay (bench/upstream.ts), on the same monotonic clock.
 */
async function consoles(job: Extract<Job, { kind: "consoles" }>, reply: (m: unknown) => void): Promise<ConsolesResult> {
  const seg = loadSegment(job.segment);
  const { chunks, ms } = seg;
  const total = seg.bytes.length;
  const conns: Conn[] = [];
  let failed: string | null = null;
  // Opened a few at a time, as viewers arrive; every console's replay starts only once all are
  // open. A console that fails to open is counted (the step falls off), the others go on.
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(50, job.targets.length) }, async () => {
      while (next < job.targets.length) {
        await open(job.targets[next++]!, { replay: true }).then((c) => void conns.push(c), (err: unknown) => void (failed ??= String(err)));
      }
    }),
  );
  let measuring = false;
  let lateUs: number[] = [];
  let closed = 0;
  let firstClose: string | null = failed ? `did not open: ${failed}` : null;
  const t0 = now() + 200_000_000n;
  const states = conns.map((conn, i) => {
    // Joins the session `phase` ms in: the first pass starts at the first chunk not yet due.
    const phase = job.phases[i]! % ms;
    const found = chunks.findIndex((c) => c[2] >= phase);
    const first = found < 0 ? chunks.length : found;
    const skipped = first < chunks.length ? chunks[first]![0] : total;
    const start = t0 - BigInt(Math.round(phase * 1e6));
    const dueAt = (pass: number, idx: number) => start + BigInt(Math.round((pass * ms + chunks[idx]![2]) * 1e6));
    const st = {
      got: 0,
      pass: 0,
      idx: first,
      /** Bytes the schedule had sent by `t` (ns). */
      due(t: bigint): number {
        const elapsed = Number(t - start) / 1e6;
        if (elapsed < 0 || chunks.length === 0) return 0;
        const pass = Math.floor(elapsed / ms);
        const within = elapsed - pass * ms;
        let n = 0;
        while (n < chunks.length && chunks[n]![2] <= within) n++;
        return Math.max(0, pass * total + (n > 0 ? chunks[n - 1]![1] : 0) - skipped);
      },
    };
    conn.onData = (d) => {
      st.got += d.length;
      // A chunk has arrived once every byte up to its end has.
      for (;;) {
        if (st.idx >= chunks.length) {
          if (chunks.length === 0) break;
          [st.idx, st.pass] = [0, st.pass + 1];
        }
        if (st.got < st.pass * total + chunks[st.idx]![1] - skipped) break;
        if (measuring) lateUs.push(Number(now() - dueAt(st.pass, st.idx)) / 1e3);
        st.idx++;
      }
    };
    conn.onClose = (why) => ((closed += 1), (firstClose ??= why));
    for (const d of conn.early.splice(0)) conn.onData(d);
    conn.send(request(`R${job.segment}@${start}~${first}`));
    return st;
  });
  const count = (): ConsolesCount => {
    const t = now();
    const c = { got: 0, due: 0, lateUs: measuring ? lateUs : [], closed, firstClose };
    for (const st of states) (c.got += st.got), (c.due += st.due(t));
    return c;
  };
  reply({ event: "started" });
  let marked: ConsolesCount | null = null;
  await new Promise<void>((resolve) =>
    process.on("message", (m) => {
      if (m === "mark") {
        marked = count();
        [measuring, lateUs] = [true, []];
        reply({ event: "marked" });
      } else if (m === "stop") resolve();
    }),
  );
  const stopped = count();
  for (const conn of conns) (conn.onClose = () => {}), conn.close();
  return { opened: conns.length, marked: marked ?? stopped, stopped };
}

/** Child side: runs one job sent over IPC. */
async function childMain(): Promise<void> {
  const job = await new Promise<Job>((r) => process.once("message", (m) => r(m as Job)));
  // Exit only once the last reply has left: a large result (the capacity section's lateness
  // samples) outgrows the pipe, and exiting first would drop it.
  let sent: Promise<void> = Promise.resolve();
  const reply = (m: unknown): void => void (sent = new Promise((r) => process.send!(m, undefined, {}, () => r())));
  try {
    if (job.kind === "download" || job.kind === "replay") return reply({ ok: true, result: await download(job) });
    if (job.kind === "echo") return reply({ ok: true, result: await echo(job.target, job.samples, job.warmup) });
    if (job.kind === "keys") return reply({ ok: true, result: await keys(job.target, job.samples) });
    if (job.kind === "consoles") return reply({ ok: true, result: await consoles(job, reply) });
    const conn = await open(job.target);
    let got = 0;
    let closed: string | null = null;
    conn.onClose = (why) => void (closed = why);
    const stopped = new Promise<void>((r) => process.on("message", (m) => m === "stop" && r()));
    if (job.kind === "bulk") {
      listen(conn, { pixels: (n) => void (got += n) });
      const t0 = now();
      conn.send(request(job.request ?? `S${2 ** 50}`));
      const sent0 = conn.sent;
      reply({ event: "started" });
      await stopped;
      const seconds = Number(now() - t0) / 1e9;
      conn.close();
      return reply({ ok: true, result: { bytes: got, seconds, closed, sent: conn.sent - sent0 } satisfies BulkResult });
    }
    let warm: () => void = () => {};
    const warmed = new Promise<void>((r) => (warm = r));
    listen(conn, {
      pixels: (n) => {
        got += n;
        if (got >= job.warmBytes) (conn.stall(), warm());
      },
    });
    conn.send(request(`S${job.bytes}`));
    await Promise.race([warmed, sleep(30_000)]);
    reply({ event: "stalled", received: got });
    await stopped;
    conn.close();
    return reply({ ok: true, result: { received: got, closed } satisfies StallResult });
  } catch (err) {
    reply({ ok: false, error: String((err as Error).stack ?? err) });
  } finally {
    void sent.then(() => setTimeout(() => process.exit(0), 50));
  }
}

// ---- parent side -------------------------------------------------------------------------------------

const SELF = fileURLToPath(import.meta.url);

/** A job running in its own process. */
export class ChildJob<T> {
  readonly child: ChildProcess;
  readonly result: Promise<T>;
  private readonly events: { event: string; [k: string]: unknown }[] = [];
  private waiters: (() => void)[] = [];

  constructor(job: Job) {
    this.child = fork(SELF, ["--child"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.result = new Promise<T>((resolve, reject) => {
      this.child.on("message", (m: { ok?: boolean; result?: T; error?: string; event?: string }) => {
        if (m.event) {
          this.events.push(m as { event: string });
          for (const w of this.waiters) w();
          return;
        }
        if (m.ok) resolve(m.result as T);
        else reject(new Error(`${job.kind} job failed: ${m.error}`));
      });
      this.child.once("exit", (code) => reject(new Error(`${job.kind} job exited with ${code} before answering`)));
    });
    this.result.catch(() => {});
    this.child.send(job);
  }

  async event(name: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = this.events.find((x) => x.event === name);
      if (e) return e;
      if (Date.now() > deadline) throw new Error(`no ${name} event from the child job`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(200), this.result.then(() => {}, () => {})]);
      this.waiters = [];
      if (this.child.exitCode !== null) throw new Error(`child job exited before ${name}`);
    }
  }

  stop(): Promise<T> {
    if (this.child.connected) this.child.send("stop");
    return this.result;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

export function runJob<T>(job: Job): Promise<T> {
  return new ChildJob<T>(job).result;
}

if (process.argv[1] === SELF && process.argv[2] === "--child") void childMain();
