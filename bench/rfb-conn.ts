/**
 * How the benchmark's clients reach an RFB server and speak to it as a viewer: over plain TCP (the
 * limit) or over a WebSocket as a viewer does (websockify or Porthole in between), past the RFB
 * handshake, announcing Fence and answering every fence request, so Porthole's edge can prove a
 * plain viewer's reading (docs/protocol.md, "Flow control"). Kinds of WebSocket client:
 *   credit   porthole.credit.v1 (Porthole's console page, `porthole listen`): credit per 128 KiB
 *   plain    no subprotocol, no compression (noVNC, a native viewer behind a proxy)
 *   browser  plain, offering permessage-deflate as Chrome does
 */
import { connect } from "node:net";
import WebSocket from "ws";
import { CREDIT_CHUNK_BYTES, CREDIT_SUBPROTOCOL } from "../shared/protocol/limits.ts";
import { RECORD_ENCODINGS, RECORD_PIXEL_FORMAT } from "./recording.ts";

export type ClientKind = "credit" | "plain" | "browser";
export const KIND: Record<ClientKind, { credit: boolean; deflate: boolean }> = {
  credit: { credit: true, deflate: false },
  plain: { credit: false, deflate: false },
  browser: { credit: false, deflate: true },
};

/** How a client reaches the server. */
export type Target = { kind: "tcp"; port: number } | { kind: "ws"; url: string; credit: boolean; deflate: boolean };

/** What the server sends, as a viewer sees it (the client answers fences itself). */
interface Events {
  pixels(n: number): void;
  bell(): void;
  /** A FramebufferUpdate ended. */
  update(rects: number): void;
}

export interface Conn {
  send(bytes: Buffer): void;
  /** Raw bytes (TCP chunks or WebSocket messages), before any RFB parsing. */
  onData: (bytes: Buffer) => void;
  onClose: (why: string) => void;
  /** Stops reading the socket (and, in credit mode, returning credit). */
  stall(): void;
  close(): void;
  /** What arrived before anyone listened (a first message in the same read as the upgrade). */
  early: Buffer[];
  /** Messages (or writes) this client sent, and how many of them answered fences. */
  sent: number;
  fences: number;
  /** permessage-deflate was negotiated. */
  deflated: boolean;
}

const FENCE_ENCODING = -312;

/**
 * A connection past the RFB handshake (3.8, security None, shared), with SetEncodings sent (Raw +
 * Fence, or the recorder's format and encodings for a replay), ready for a workload request.
 */
export async function open(target: Target, { replay = false, timeoutMs = 30_000 } = {}): Promise<Conn> {
  const conn = await (target.kind === "tcp" ? openTcp(target.port, timeoutMs) : openWs(target, timeoutMs));
  try {
    await handshake(conn, timeoutMs);
  } catch (err) {
    conn.close();
    throw err;
  }
  if (replay) conn.send(Buffer.concat([RECORD_PIXEL_FORMAT, setEncodings(RECORD_ENCODINGS)]));
  else conn.send(setEncodings([0, FENCE_ENCODING]));
  return conn;
}

export function setEncodings(list: number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * list.length);
  b[0] = 2;
  b.writeUInt16BE(list.length, 2);
  list.forEach((e, i) => b.writeInt32BE(e, 4 + 4 * i));
  return b;
}

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
    if ((await read(4)).readUInt32BE(0) !== 0) throw new Error("the server refused security None");
    conn.send(Buffer.from([1])); // ClientInit: shared
    await read((await read(24)).readUInt32BE(20)); // ServerInit and its name
  } finally {
    clearTimeout(timer);
    conn.onData = (d) => void conn.early.push(d);
    conn.onClose = () => {};
  }
  if (buf.length) conn.early.unshift(buf);
}

function openTcp(port: number, timeoutMs: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", noDelay: true });
    const timer = setTimeout(() => (socket.destroy(), reject(new Error("TCP connect timed out"))), timeoutMs);
    const conn: Conn = {
      send: (b) => void (conn.sent++, socket.write(b)),
      onData: (d) => void conn.early.push(d),
      onClose: () => {},
      stall: () => socket.pause(),
      close: () => socket.destroy(),
      early: [],
      sent: 0,
      fences: 0,
      deflated: false,
    };
    socket.on("data", (d: Buffer) => conn.onData(d));
    socket.on("close", () => conn.onClose("closed"));
    socket.once("error", (err) => (clearTimeout(timer), reject(err)));
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.on("error", () => {});
      resolve(conn);
    });
  });
}

function openWs(target: Extract<Target, { kind: "ws" }>, timeoutMs: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target.url, target.credit ? [CREDIT_SUBPROTOCOL] : [], {
      perMessageDeflate: target.deflate,
      handshakeTimeout: timeoutMs,
    });
    ws.binaryType = "nodebuffer";
    let consumed = 0;
    let stalled = false;
    const conn: Conn = {
      send: (b) => void (conn.sent++, ws.send(b, { binary: true })),
      onData: (d) => void conn.early.push(d),
      onClose: () => {},
      stall: () => {
        stalled = true;
        ws.pause();
      },
      close: () => ws.terminate(),
      early: [],
      sent: 0,
      fences: 0,
      deflated: false,
    };
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      conn.onData(data);
      // What the console page does: acknowledge what it has consumed, once a quarter window.
      if (!stalled && ws.protocol === CREDIT_SUBPROTOCOL) {
        consumed += data.length;
        if (consumed >= CREDIT_CHUNK_BYTES) {
          conn.sent++;
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
      conn.deflated = ws.extensions.includes("permessage-deflate");
      if (target.credit && ws.protocol !== CREDIT_SUBPROTOCOL) {
        ws.terminate();
        return reject(new Error(`server did not accept ${CREDIT_SUBPROTOCOL}`));
      }
      resolve(conn);
    });
  });
}

/**
 * Parses what an RFB server sends (Raw rectangles at 32 bpp, Bell, ServerCutText, ServerFence)
 * and answers fence requests as noVNC does: flags masked to BlockBefore|BlockAfter, payload echoed.
 */
export function listen(conn: Conn, on: Partial<Events>): void {
  let state: "type" | "update" | "rect" | "cut" | "fence" | "skip" = "type";
  let need = 1;
  let head: Buffer = Buffer.alloc(0);
  let skip = 0;
  let skipPixels = false;
  let rects = 0;
  let rectsTotal = 0;
  const reset = () => ((state = "type"), (need = 1));
  const afterRect = () => {
    if (--rects > 0) return void ((state = "rect"), (need = 12));
    on.update?.(rectsTotal);
    reset();
  };
  const header = (h: Buffer) => {
    if (state === "type") {
      // The type byte stays in `head`: the headers below are counted from it.
      const type = h[0]!;
      head = h;
      if (type === 0) return void ((state = "update"), (need = 4));
      if (type === 3) return void ((state = "cut"), (need = 8));
      if (type === 248) return void ((state = "fence"), (need = 9));
      head = Buffer.alloc(0);
      if (type === 2) return void (on.bell?.(), reset());
      throw new Error(`unexpected server message ${type}`);
    }
    if (state === "update") {
      rects = rectsTotal = h.readUInt16BE(2);
      return rects === 0 ? (on.update?.(0), reset()) : void ((state = "rect"), (need = 12));
    }
    if (state === "rect") {
      const encoding = h.readInt32BE(8);
      if (encoding === -224) return void ((rects = 1), afterRect()); // LastRect
      if (encoding !== 0) throw new Error(`unexpected encoding ${encoding}`);
      skip = h.readUInt16BE(4) * h.readUInt16BE(6) * 4;
      skipPixels = true;
      return skip === 0 ? afterRect() : void (state = "skip");
    }
    if (state === "cut") {
      skip = Math.abs(h.readInt32BE(4));
      skipPixels = false;
      return skip === 0 ? reset() : void (state = "skip");
    }
    // fence: 9 bytes, then the payload
    if (need === 9 && h[8]! > 0) return void ((need = 9 + h[8]!), (head = h));
    const flags = h.readUInt32BE(4);
    if (flags & 0x80000000) {
      const reply = Buffer.from(h);
      reply.writeUInt32BE(flags & 3, 4);
      conn.send(reply);
      conn.fences++;
    }
    reset();
  };
  conn.onData = (d) => {
    let i = 0;
    while (i < d.length) {
      if (state === "skip") {
        const n = Math.min(skip, d.length - i);
        skip -= n;
        i += n;
        if (skipPixels) on.pixels?.(n);
        if (skip === 0) skipPixels ? afterRect() : reset();
        continue;
      }
      const take = Math.min(need - head.length, d.length - i);
      head = head.length ? Buffer.concat([head, d.subarray(i, i + take)]) : d.subarray(i, i + take);
      i += take;
      if (head.length < need) return;
      const h = head;
      head = Buffer.alloc(0);
      header(h);
    }
  };
  for (const d of conn.early.splice(0)) conn.onData(d);
}

/** A workload request (bench/upstream.ts): a ClientCutText. */
export function request(text: string): Buffer {
  const b = Buffer.alloc(8 + text.length);
  b[0] = 6;
  b.writeUInt32BE(text.length, 4);
  b.write(text, 8);
  return b;
}

/** KeyEvent down + up of a keysym: 16 bytes, one message. */
export const keyPress = (keysym = 0x61) => {
  const b = Buffer.alloc(16);
  b.set([4, 1], 0);
  b.writeUInt32BE(keysym, 4);
  b[8] = 4;
  b.writeUInt32BE(keysym, 12);
  return b;
};
