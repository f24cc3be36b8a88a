/**
 * The synthetic upstream ("VM console") every path of the benchmark talks to, its own process so
 * its work never shares an event loop with the clients that measure.
 *
 * It speaks RFB 3.8 (security None) and frames every client message (SetPixelFormat,
 * SetEncodings, update requests, keys, pointer, cut text, fences), so any viewer may announce
 * what a real one does (Fence, which makes Porthole's edge prove plain viewers' reading with fences).
 * A ClientCutText picks the workload:
 *   "S<n>"             source: n bytes of incompressible pixels in raw FramebufferUpdates
 *   "P<bytes/s>"       paced source: the same, at that rate (one update every 100 ms), until closed
 *   "E"                echo: one byte back (a Bell) for every byte of each KeyEvent
 *   "R<file>:<n>"      replay a recorded session segment (bench/recording.ts) in a loop until n bytes
 *   "R<file>@<ns>"     replay it once at its recorded pace, chunk i at monotonic time ns + its offset
 *   "R<file>@<ns>~<i>" replay it at its pace in a loop until closed, from chunk i on the first pass
 *                      (a console joining its session mid-way), pass k's chunks k × its length later
 * A connection whose first byte is 'T' gets one JSON line of counters, then is closed.
 *
 * Run: `node bench/upstream.ts [port]`; prints `{"port":…}` once listening.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Socket } from "node:net";
import { clientMessageLength } from "../test/harness/rfb-messages.ts";
import { loadSegment } from "./recording.ts";

/** 1 MiB of random bytes, repeated: nothing on any path can compress it. */
const PATTERN = randomBytes(1024 * 1024);
const CHUNK = 256 * 1024;
export const WIDTH = 1024;
export const HEIGHT = 768;
const ROW_BYTES = WIDTH * 4;

/** ServerInit: the framebuffer size, a 32-bit true-colour pixel format, the name "bench". */
function serverInit(): Buffer {
  const name = Buffer.from("bench");
  const b = Buffer.alloc(24 + name.length);
  b.writeUInt16BE(WIDTH, 0);
  b.writeUInt16BE(HEIGHT, 2);
  Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0]).copy(b, 4);
  b.writeUInt32BE(name.length, 20);
  name.copy(b, 24);
  return b;
}

/** A FramebufferUpdate with one raw rectangle of `rows` full-width rows (header only). */
function updateHeader(rows: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16BE(1, 2);
  b.writeUInt16BE(WIDTH, 8);
  b.writeUInt16BE(rows, 10);
  return b;
}

const counters = { connections: 0, open: 0, sourceWritten: 0, echoed: 0 };

/** Writes `total` bytes of raw pixels (whole rows), as fast as the socket takes them. */
function source(socket: Socket, total: number): void {
  let sent = 0;
  let at = 0;
  const pump = (): void => {
    while (sent < total && !socket.destroyed) {
      const rows = Math.ceil(Math.min(CHUNK, total - sent) / ROW_BYTES);
      const n = rows * ROW_BYTES;
      const chunk = PATTERN.subarray(at, at + n);
      at = (at + n) % PATTERN.length;
      sent += n;
      counters.sourceWritten += n;
      socket.write(updateHeader(rows));
      if (!socket.write(chunk)) return void socket.once("drain", pump);
    }
  };
  pump();
}

function paced(socket: Socket, perSecond: number): void {
  const rows = Math.max(1, Math.round(perSecond / 10 / ROW_BYTES));
  const timer = setInterval(() => {
    counters.sourceWritten += rows * ROW_BYTES;
    socket.write(Buffer.concat([updateHeader(rows), PATTERN.subarray(0, rows * ROW_BYTES)]));
  }, 100);
  socket.on("close", () => clearInterval(timer));
}

function replay(socket: Socket, spec: string): void {
  const m = /^(.+?)(?::(\d+)|@(\d+)(?:~(\d+))?)$/.exec(spec);
  if (!m) return void socket.destroy();
  const seg = loadSegment(m[1]!);
  if (m[2]) {
    // Flat out, looped: segments start and end at message boundaries, so a loop stays well framed.
    let left = Number(m[2]);
    const pump = (): void => {
      while (left > 0 && !socket.destroyed) {
        left -= seg.bytes.length;
        if (!socket.write(seg.bytes)) return void socket.once("drain", pump);
      }
    };
    return pump();
  }
  const start = BigInt(m[3]!);
  const loop = m[4] !== undefined;
  let i = loop ? Number(m[4]) : 0;
  let pass = 0;
  const next = (): void => {
    while (!socket.destroyed) {
      if (i >= seg.chunks.length) {
        if (!loop || seg.chunks.length === 0) return;
        [i, pass] = [0, pass + 1];
      }
      const [offset, end, atMs] = seg.chunks[i]!;
      const wait = Number(start + BigInt(Math.round((pass * seg.ms + atMs) * 1e6)) - process.hrtime.bigint()) / 1e6;
      if (wait > 0.5) return void setTimeout(next, wait);
      socket.write(seg.bytes.subarray(offset, end));
      i++;
    }
  };
  next();
}

function serve(socket: Socket): void {
  counters.connections++;
  counters.open++;
  socket.setNoDelay(true);
  socket.on("error", () => {});
  socket.on("close", () => counters.open--);
  let buf: Buffer = Buffer.alloc(0);
  let step = 0;
  let echo = false;
  socket.write("RFB 003.008\n");
  socket.on("data", (data: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, data]) : data;
    if (step === 0 && buf[0] === 0x54) {
      // 'T': telemetry is not a workload: do not count this connection.
      counters.connections--;
      counters.open--;
      socket.removeAllListeners("close");
      return void socket.end(`${JSON.stringify(counters)}\n`);
    }
    // Version (12 bytes) → security None offered; choice (1) → OK; ClientInit (1) → ServerInit.
    const handshake: [number, Buffer][] = [[12, Buffer.from([1, 1])], [1, Buffer.alloc(4)], [1, serverInit()]];
    while (step < 3 && buf.length >= handshake[step]![0]) {
      buf = buf.subarray(handshake[step]![0]);
      socket.write(handshake[step++]![1]);
    }
    if (step < 3) return;
    for (;;) {
      if (buf.length === 0) return;
      const n = clientMessageLength(buf);
      if (n === undefined) return void socket.destroy(); // cannot frame: a real server drops the client too
      if (n === null || buf.length < n) return;
      const msg = buf.subarray(0, n);
      buf = buf.subarray(n);
      if (msg[0] === 4 && echo) {
        counters.echoed += n;
        socket.write(Buffer.alloc(n, 2)); // Bells
      } else if (msg[0] === 6) {
        const text = msg.subarray(8).toString();
        if (text.startsWith("S")) source(socket, Number(text.slice(1)));
        else if (text.startsWith("P")) paced(socket, Number(text.slice(1)));
        else if (text.startsWith("R")) replay(socket, text.slice(1));
        else if (text === "E") echo = true;
      }
    }
  });
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const server = createServer({ noDelay: true }, serve);
  server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", 4096, () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
  });
  process.on("SIGTERM", () => process.exit(0));
  process.on("SIGINT", () => process.exit(0));
}
