/**
 * The benchmark's clients. A client reaches the upstream over plain TCP (the limit) or over a
 * WebSocket as noVNC does (binary messages; websockify or Porthole in between).
 *
 * Jobs that measure run in a child process of their own (`node bench/client.ts`, driven over IPC),
 * so a bulk download and an echo probe never share an event loop, and the orchestrator's own work
 * never lands in a measurement.
 */
import { fork, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { CREDIT_CHUNK_BYTES, CREDIT_SUBPROTOCOL } from "../shared/protocol/limits.ts";

/** How a client reaches the upstream. */
export type Target =
  | { kind: "tcp"; port: number }
  /** `credit`: speak porthole.credit.v1 and return credit as bytes are consumed, like the console page. */
  | { kind: "ws"; url: string; credit: boolean };

export interface Conn {
  send(bytes: Buffer): void;
  /** Called for every chunk (TCP) or message (WebSocket) received. */
  onData: (bytes: Buffer) => void;
  onClose: (why: string) => void;
  /** Stops reading the socket (and, in credit mode, returning credit). */
  stall(): void;
  close(): void;
  /**
   * What arrived before anyone listened: a WebSocket's first message can come in the same read as
   * the handshake's response, and is then delivered before the caller of `open` resumes.
   */
  early: Buffer[];
}

/** A connection to the upstream, past the RFB handshake: ready for a workload request. */
export async function open(target: Target, timeoutMs = 30_000): Promise<Conn> {
  const conn = await (target.kind === "tcp" ? openTcp(target.port, timeoutMs) : openWs(target.url, target.credit, timeoutMs));
  try {
    await handshake(conn, timeoutMs);
  } catch (err) {
    conn.close();
    throw err;
  }
  return conn;
}

/**
 * The viewer's side of the RFB handshake (version 3.8, security None, shared session): the edge
 * and the connector follow every console's RFB stream, so the workloads run inside one.
 */
async function handshake(conn: Conn, timeoutMs: number): Promise<void> {
  let buf = Buffer.concat(conn.early.splice(0));
  let wake = (_err?: Error) => {};
  conn.onData = (d) => {
    buf = Buffer.concat([buf, d]);
    wake();
  };
  conn.onClose = (why) => wake(new Error(`closed during the RFB handshake: ${why}`));
  const timer = setTimeout(() => wake(new Error("the RFB handshake timed out")), timeoutMs);
  const read = async (n: number) => {
    while (buf.length < n) await new Promise<void>((resolve, reject) => (wake = (err) => (err ? reject(err) : resolve())));
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
  try {
    await read(12);
    conn.send(Buffer.from("RFB 003.008\n"));
    await read((await read(1))[0]!);
    conn.send(Buffer.from([1])); // security None
    if ((await read(4)).readUInt32BE(0) !== 0) throw new Error("the upstream refused security None");
    conn.send(Buffer.from([1])); // ClientInit: shared
    await read((await read(24)).readUInt32BE(20)); // ServerInit and its name
  } finally {
    clearTimeout(timer);
    conn.onData = () => {};
    conn.onClose = () => {};
  }
}

function openTcp(port: number, timeoutMs: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", noDelay: true });
    const timer = setTimeout(() => (socket.destroy(), reject(new Error("TCP connect timed out"))), timeoutMs);
    const conn: Conn = {
      send: (b) => void socket.write(b),
      onData: (d) => void conn.early.push(d),
      onClose: () => {},
      stall: () => socket.pause(),
      close: () => socket.destroy(),
      early: [],
    };
    socket.on("data", (d: Buffer) => conn.onData(d));
    socket.on("close", () => conn.onClose("closed"));
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.on("error", () => {});
      resolve(conn);
    });
  });
}

function openWs(url: string, credit: boolean, timeoutMs: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    // No permessage-deflate: neither websockify nor a VNC stream benefits, and the upstream's
    // bytes are random anyway.
    const ws = new WebSocket(url, credit ? [CREDIT_SUBPROTOCOL] : [], { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    ws.binaryType = "nodebuffer";
    let consumed = 0;
    let stalled = false;
    const conn: Conn = {
      send: (b) => ws.send(b, { binary: true }),
      onData: (d) => void conn.early.push(d),
      onClose: () => {},
      stall: () => {
        stalled = true;
        ws.pause();
      },
      close: () => ws.terminate(),
      early: [],
    };
    const creditMode = () => ws.protocol === CREDIT_SUBPROTOCOL;
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      conn.onData(data);
      // What the console page does: acknowledge what it has consumed, once a quarter window.
      if (!stalled && creditMode()) {
        consumed += data.length;
        if (consumed >= CREDIT_CHUNK_BYTES) {
          ws.send(String(consumed));
          consumed = 0;
        }
      }
    });
    ws.on("close", (code, reason) => conn.onClose(`${code} ${reason.toString()}`));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once("error", reject);
    ws.once("open", () => {
      ws.on("error", () => {});
      if (credit && !creditMode()) {
        ws.terminate();
        reject(new Error(`server did not accept ${CREDIT_SUBPROTOCOL}`));
        return;
      }
      resolve(conn);
    });
  });
}

/** A workload request (bench/upstream.ts): a ClientCutText with the text "S<n>" or "E". */
function request(text: string): Buffer {
  const b = Buffer.alloc(8 + text.length);
  b[0] = 6;
  b.writeUInt32BE(text.length, 4);
  b.write(text, 8);
  return b;
}

export const sourceRequest = (bytes: number) => request(`S${bytes}`);

/** `size` bytes of input for an echo round trip: KeyEvents (8 bytes each), the upstream answers each byte. */
const keys = (size: number) => Buffer.concat(Array.from({ length: Math.ceil(size / 8) }, () => Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61])));

const now = (): bigint => process.hrtime.bigint();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- jobs ------------------------------------------------------------------------------------------

export type Job =
  | { kind: "download"; target: Target; bytes: number }
  | { kind: "echo"; target: Target; samples: number; warmup: number; size: number }
  /** Downloads until told to stop; reports what it got. */
  | { kind: "bulk"; target: Target }
  /** Reads `warmBytes`, then stops reading and crediting; stays until told to stop. */
  | { kind: "stall"; target: Target; bytes: number; warmBytes: number };

export interface DownloadResult {
  bytes: number;
  seconds: number;
  /** CPU seconds the client process used for the transfer. */
  cpu: number;
}
export interface EchoResult {
  /** Round trips in microseconds, in the order measured. */
  us: number[];
}
export interface BulkResult {
  bytes: number;
  seconds: number;
  closed: string | null;
}
export interface StallResult {
  received: number;
  closed: string | null;
}

/** Opens a connection, asks for echo and checks one round trip: one "console" of the scale test. */
export async function openEchoOnce(target: Target, timeoutMs = 30_000): Promise<Conn> {
  const conn = await open(target, timeoutMs);
  const probe = keys(16);
  await new Promise<void>((resolve, reject) => {
    let have = 0;
    const timer = setTimeout(() => reject(new Error("no echo")), timeoutMs);
    conn.onClose = (why) => {
      clearTimeout(timer);
      reject(new Error(`closed before the echo: ${why}`));
    };
    conn.onData = (d) => {
      have += d.length;
      if (have >= probe.length) {
        clearTimeout(timer);
        resolve();
      }
    };
    conn.send(Buffer.concat([request("E"), probe]));
  }).catch((err: unknown) => {
    conn.close();
    throw err;
  });
  conn.onData = () => {};
  conn.onClose = () => {};
  return conn;
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export async function download(target: Target, bytes: number): Promise<DownloadResult> {
  const conn = await open(target);
  return new Promise((resolve, reject) => {
    let got = 0;
    const c0 = cpuNow();
    const t0 = now();
    conn.onData = (d) => {
      got += d.length;
      if (got >= bytes) {
        const t1 = now();
        conn.onData = () => {};
        conn.onClose = () => {};
        conn.close();
        resolve({
          bytes: got,
          seconds: Number(t1 - t0) / 1e9,
          cpu: cpuNow() - c0,
        });
      }
    };
    conn.onClose = (why) => reject(new Error(`closed after ${got} of ${bytes} bytes: ${why}`));
    conn.send(sourceRequest(bytes));
  });
}

export async function echo(target: Target, samples: number, warmup: number, size: number, timeoutMs = 10_000): Promise<EchoResult> {
  const conn = await open(target);
  const payload = keys(size);
  const us: number[] = [];
  let closed: string | null = null;
  conn.onClose = (why) => (closed = why);
  conn.send(request("E"));
  let waiting: (() => void) | null = null;
  let have = 0;
  conn.onData = (d) => {
    have += d.length;
    if (have >= size && waiting) {
      have -= size;
      const w = waiting;
      waiting = null;
      w();
    }
  };
  for (let i = 0; i < warmup + samples; i++) {
    if (closed) throw new Error(`echo socket closed after ${i} round trips: ${closed}`);
    const t0 = now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        conn.close();
        reject(new Error(`echo round trip ${i} of ${warmup + samples} got no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      waiting = () => {
        clearTimeout(timer);
        resolve();
      };
      conn.send(payload);
    });
    const t1 = now();
    if (i >= warmup) us.push(Number(t1 - t0) / 1e3);
  }
  conn.onClose = () => {};
  conn.close();
  return { us };
}

/** Child side: runs one job sent over IPC. */
async function childMain(): Promise<void> {
  const job = await new Promise<Job>((r) => process.once("message", (m) => r(m as Job)));
  const reply = (m: unknown): void => void process.send!(m);
  try {
    if (job.kind === "download") return reply({ ok: true, result: await download(job.target, job.bytes) });
    if (job.kind === "echo") return reply({ ok: true, result: await echo(job.target, job.samples, job.warmup, job.size) });
    const conn = await open(job.target);
    let got = 0;
    let closed: string | null = null;
    conn.onClose = (why) => void (closed = why);
    const stopped = new Promise<void>((r) => process.on("message", (m) => m === "stop" && r()));
    if (job.kind === "bulk") {
      conn.onData = (d) => void (got += d.length);
      const t0 = now();
      conn.send(sourceRequest(2 ** 50));
      reply({ event: "started" });
      await stopped;
      const seconds = Number(now() - t0) / 1e9;
      conn.close();
      return reply({ ok: true, result: { bytes: got, seconds, closed } satisfies BulkResult });
    }
    // stall
    let warm: () => void = () => {};
    const warmed = new Promise<void>((r) => (warm = r));
    conn.onData = (d) => {
      got += d.length;
      if (got >= job.warmBytes) {
        conn.stall();
        warm();
      }
    };
    conn.send(sourceRequest(job.bytes));
    await Promise.race([warmed, sleep(30_000)]);
    reply({ event: "stalled", received: got });
    await stopped;
    conn.close();
    return reply({ ok: true, result: { received: got, closed } satisfies StallResult });
  } catch (err) {
    reply({ ok: false, error: String((err as Error).stack ?? err) });
  } finally {
    setTimeout(() => process.exit(0), 50);
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
