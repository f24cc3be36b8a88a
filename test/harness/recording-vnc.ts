/**
 * A small RFB 3.8 server that records every client message by type: proof of what a viewer's
 * input did (or did not) reach a console. It answers update requests with a solid green screen.
 */
import { createServer, type Server, type Socket } from "node:net";
import { clientMessageLength } from "./rfb-messages.ts";

export interface RecordingVnc {
  port: number;
  /** Client message types received after the handshake, in order, over all connections. */
  messages: number[];
  /** ClientInit shared flags received. */
  sharedFlags: number[];
  updatesSent: number;
  stop(): Promise<void>;
}

const WIDTH = 320;
const HEIGHT = 240;

export async function startRecordingVnc(): Promise<RecordingVnc> {
  const state: RecordingVnc = { port: 0, messages: [], sharedFlags: [], updatesSent: 0, stop: async () => {} };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    let buf = Buffer.alloc(0);
    let phase: "version" | "security" | "init" | "messages" = "version";
    let format = { bpp: 32, bigEndian: false, r: 16, g: 8, b: 0 };
    socket.write("RFB 003.008\n");
    const sendUpdate = () => {
      const bytesPer = format.bpp / 8;
      const pixel = Buffer.alloc(bytesPer);
      const value = (255 << format.g) >>> 0; // pure green
      if (bytesPer === 4) format.bigEndian ? pixel.writeUInt32BE(value) : pixel.writeUInt32LE(value);
      const head = Buffer.alloc(16);
      head.writeUInt8(0, 0);
      head.writeUInt16BE(1, 2);
      head.writeUInt16BE(WIDTH, 8);
      head.writeUInt16BE(HEIGHT, 10);
      head.writeInt32BE(0, 12);
      socket.write(Buffer.concat([head, Buffer.alloc(WIDTH * HEIGHT * bytesPer, pixel)]));
      state.updatesSent++;
    };
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (phase === "version") {
          if (buf.length < 12) return;
          buf = buf.subarray(12);
          socket.write(Buffer.from([1, 1])); // one security type: None
          phase = "security";
        } else if (phase === "security") {
          if (buf.length < 1) return;
          buf = buf.subarray(1);
          socket.write(Buffer.alloc(4)); // SecurityResult OK
          phase = "init";
        } else if (phase === "init") {
          if (buf.length < 1) return;
          state.sharedFlags.push(buf[0]!);
          buf = buf.subarray(1);
          const init = Buffer.alloc(24 + 8);
          init.writeUInt16BE(WIDTH, 0);
          init.writeUInt16BE(HEIGHT, 2);
          init.set([32, 24, 0, 1], 4);
          init.writeUInt16BE(255, 8);
          init.writeUInt16BE(255, 10);
          init.writeUInt16BE(255, 12);
          init.set([16, 8, 0], 14);
          init.writeUInt32BE(8, 20);
          init.write("recorder", 24);
          socket.write(init);
          phase = "messages";
        } else {
          if (buf.length < 1) return;
          const type = buf[0]!;
          const length = clientMessageLength(buf);
          if (length === undefined) {
            state.messages.push(type);
            socket.destroy(); // cannot frame: a real server would drop the client too
            return;
          }
          if (length === null || buf.length < length) return;
          const msg = buf.subarray(0, length);
          buf = buf.subarray(length);
          state.messages.push(type);
          if (type === 0) format = { bpp: msg[4]!, bigEndian: msg[6] === 1, r: msg[14]!, g: msg[15]!, b: msg[16]! };
          if (type === 3) sendUpdate();
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  state.port = (server.address() as { port: number }).port;
  state.stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return state;
}
