/** A minimal stand-in VNC server for unit tests: greets like RFB 3.8, then echoes what it gets. */
import { createServer, type Server, type Socket } from "node:net";

export const GREETING = "RFB 003.008\n";

export async function startFakeVnc(): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    s.write(GREETING);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Reads from a stream until `n` bytes arrived (or fails after `ms`). */
export function readBytes(stream: NodeJS.ReadableStream, n: number, ms = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error(`timed out after ${got.length} of ${n} bytes`)), ms);
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= n) {
        clearTimeout(timer);
        stream.off("data", onData);
        resolve(got);
      }
    };
    stream.on("data", onData);
  });
}
