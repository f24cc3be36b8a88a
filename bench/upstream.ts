/**
 * The synthetic upstream ("VM console") every path of the benchmark talks to, run as its own
 * process so its work never shares an event loop with the clients that measure.
 *
 * It speaks just enough RFB for the edge and the connector, which follow a console's RFB stream
 * (greeting, security None, ServerInit, then well-formed messages both ways). After the handshake
 * the client's first message, a ClientCutText, picks the workload:
 *   "S<n>"  source: n bytes of incompressible pixels in raw FramebufferUpdates; the client closes
 *   "E"     echo: one byte back (a Bell) for every byte received (the client sends KeyEvents)
 * A connection whose first byte is 'T' instead of the RFB version gets one JSON line of counters
 * (telemetry), then is closed.
 *
 * Run: `node bench/upstream.ts [port]`; prints `{"port":…}` once listening.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Socket } from "node:net";

/** 1 MiB of random bytes, repeated: nothing on any path can compress it. */
const PATTERN = randomBytes(1024 * 1024);
const CHUNK = 256 * 1024;

const WIDTH = 1024;
const HEIGHT = 768;
/** Bytes of one full-width row at 32 bits per pixel: a FramebufferUpdate carries whole rows. */
const ROW_BYTES = WIDTH * 4;

/** ServerInit: the framebuffer size, a 32-bit true-colour pixel format, the name "bench". */
function serverInit(): Buffer {
  const name = Buffer.from("bench");
  const b = Buffer.alloc(24 + name.length);
  b.writeUInt16BE(WIDTH, 0);
  b.writeUInt16BE(HEIGHT, 2);
  Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0]).copy(b, 4); // bpp, depth, big-endian, true colour, maxima, shifts
  b.writeUInt32BE(name.length, 20);
  name.copy(b, 24);
  return b;
}

/** The header of a FramebufferUpdate with one raw rectangle of `rows` full-width rows. */
function updateHeader(rows: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16BE(1, 2); // message type 0, padding, one rectangle
  b.writeUInt16BE(WIDTH, 8);
  b.writeUInt16BE(rows, 10); // x = y = 0, encoding 0 (raw)
  return b;
}

const HANDSHAKE = [
  { after: 12, reply: Buffer.from([1, 1]) },
  { after: 13, reply: Buffer.alloc(4) },
  { after: 14, reply: serverInit() },
];

const counters = { connections: 0, open: 0, sourceWritten: 0, sourceDone: 0, echoed: 0 };

function source(socket: Socket, total: number): void {
  let sent = 0;
  let at = 0;
  const pump = (): void => {
    while (sent < total && !socket.destroyed) {
      // Whole rows: the last update may carry up to one row more than asked.
      const rows = Math.ceil(Math.min(CHUNK, total - sent) / ROW_BYTES);
      const n = rows * ROW_BYTES;
      const chunk = PATTERN.subarray(at, at + n);
      at = (at + n) % PATTERN.length;
      sent += n;
      counters.sourceWritten += n;
      socket.write(updateHeader(rows));
      if (!socket.write(chunk)) {
        socket.once("drain", pump);
        return;
      }
    }
    // The socket stays open: the client closes it once it has everything (websockify 0.10 can
    // drop the tail of what it had queued when the target closes first).
    if (sent >= total) counters.sourceDone++;
  };
  pump();
}

function serve(socket: Socket): void {
  counters.connections++;
  counters.open++;
  socket.setNoDelay(true);
  socket.on("error", () => {});
  socket.on("close", () => counters.open--);
  let head: Buffer = Buffer.alloc(0);
  let step = 0;
  const onFirst = (data: Buffer): void => {
    head = head.length ? Buffer.concat([head, data]) : data;
    if (head[0] === 0x54) {
      // 'T': telemetry is not a workload: do not count this connection.
      socket.off("data", onFirst);
      counters.connections--;
      counters.open--;
      socket.removeAllListeners("close");
      socket.end(`${JSON.stringify(counters)}\n`);
      return;
    }
    // The handshake: after the version (12 bytes) security type None is offered, after the choice
    // (1 byte) SecurityResult OK, after ClientInit (1 byte) ServerInit.
    while (step < 3 && head.length >= HANDSHAKE[step]!.after) socket.write(HANDSHAKE[step++]!.reply);
    // Then the workload's ClientCutText: type, 3 padding, u32 length, text.
    if (step !== 3 || head.length < 22 || head.length < 22 + head.readUInt32BE(18)) return;
    const end = 22 + head.readUInt32BE(18);
    const request = head.subarray(22, end).toString();
    const rest = head.subarray(end);
    socket.off("data", onFirst);
    if (request.startsWith("S")) {
      // Anything after the request is ignored (a source only sends).
      socket.on("data", () => {});
      source(socket, Number(request.slice(1)));
    } else if (request === "E") {
      const echo = (d: Buffer) => {
        counters.echoed += d.length;
        socket.write(Buffer.alloc(d.length, 2)); // Bell
      };
      socket.on("data", echo);
      if (rest.length) echo(rest);
    } else {
      socket.destroy();
    }
  };
  socket.write("RFB 003.008\n");
  socket.on("data", onFirst);
}

const server = createServer({ noDelay: true }, serve);
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", 4096, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
