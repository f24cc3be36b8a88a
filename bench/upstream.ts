/**
 * The synthetic upstream ("VM console") every path of the benchmark talks to, run as its own
 * process so its work never shares an event loop with the clients that measure.
 *
 * One port serves every workload. The first byte a client sends picks the mode:
 *   'S' + u64 BE n  source: send n bytes (incompressible); the client closes
 *   'E'             echo: send back every byte received
 *   'K'             sink: read and count
 *   'T'             telemetry: one JSON line of counters, then close
 *
 * Run: `node bench/upstream.ts [port]`; prints `{"port":…}` once listening.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Socket } from "node:net";

/** 1 MiB of random bytes, repeated: nothing on any path can compress it. */
const PATTERN = randomBytes(1024 * 1024);
const CHUNK = 256 * 1024;

const counters = { connections: 0, open: 0, sourceWritten: 0, sourceDone: 0, echoed: 0, sunk: 0 };

function source(socket: Socket, total: number): void {
  let sent = 0;
  let at = 0;
  const pump = (): void => {
    while (sent < total && !socket.destroyed) {
      const n = Math.min(CHUNK, total - sent, PATTERN.length - at);
      const chunk = PATTERN.subarray(at, at + n);
      at = (at + n) % PATTERN.length;
      sent += n;
      counters.sourceWritten += n;
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
  const onFirst = (data: Buffer): void => {
    head = head.length ? Buffer.concat([head, data]) : data;
    const mode = String.fromCharCode(head[0]!);
    if (mode === "S") {
      if (head.length < 9) return;
      socket.off("data", onFirst);
      const n = Number(head.readBigUInt64BE(1));
      // Anything after the request is ignored (a source only sends).
      socket.on("data", () => {});
      source(socket, n);
    } else if (mode === "E") {
      socket.off("data", onFirst);
      socket.on("data", (d: Buffer) => {
        counters.echoed += d.length;
        socket.write(d);
      });
      const rest = head.subarray(1);
      if (rest.length) {
        counters.echoed += rest.length;
        socket.write(rest);
      }
    } else if (mode === "K") {
      socket.off("data", onFirst);
      counters.sunk += head.length - 1;
      socket.on("data", (d: Buffer) => (counters.sunk += d.length));
    } else if (mode === "T") {
      socket.off("data", onFirst);
      // Telemetry is not a workload: do not count this connection.
      counters.connections--;
      counters.open--;
      socket.removeAllListeners("close");
      socket.end(`${JSON.stringify(counters)}\n`);
    } else {
      socket.destroy();
    }
  };
  socket.on("data", onFirst);
}

const server = createServer({ noDelay: true }, serve);
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", 4096, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
