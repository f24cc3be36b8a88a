/**
 * A synthetic "VM console" that sends as fast as its peer lets it, and counts what the kernel
 * accepted: a reader that stalls shows up as a total that stops growing.
 */
import { createServer, type Server, type Socket } from "node:net";

export interface Firehose {
  port: number;
  /** Bytes accepted by the socket so far, over all connections. */
  written(): number;
  connections(): number;
  stop(): Promise<void>;
}

export async function startFirehose(): Promise<Firehose> {
  let written = 0;
  let connections = 0;
  const sockets = new Set<Socket>();
  const block = Buffer.alloc(64 * 1024, 0x5a);
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    const pump = () => {
      while (!socket.destroyed) {
        written += block.length;
        if (!socket.write(block)) {
          socket.once("drain", pump);
          return;
        }
      }
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    written: () => written,
    connections: () => connections,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
