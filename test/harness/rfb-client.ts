/**
 * A small RFB 3.8 client over WebSocket, as noVNC speaks it: enough to complete the handshake
 * and read a whole framebuffer in Raw encoding, so tests can check real pixels.
 */
import WebSocket from "ws";

export class ByteReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private waiter: (() => void) | null = null;
  closed: { code: number; reason: string } | null = null;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    this.waiter?.();
  }

  end(code: number, reason: string): void {
    this.closed = { code, reason };
    this.waiter?.();
  }

  async read(n: number, timeoutMs = 15_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.length < n) {
      if (this.closed) throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) after ${this.length} of ${n} bytes`);
      if (Date.now() > deadline) throw new Error(`timed out reading ${n} bytes (have ${this.length})`);
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 100);
      });
      this.waiter = null;
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = [all.subarray(n)];
    this.length -= n;
    return all.subarray(0, n);
  }
}

export interface ServerInit {
  version: string;
  width: number;
  height: number;
  name: string;
}

export class RfbClient {
  readonly ws: WebSocket;
  readonly reader = new ByteReader();
  private init: ServerInit | null = null;

  /** The edge's text notices (credit mode: recorded, idle warnings, watching now), kept apart from the RFB bytes. */
  readonly notices: string[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (d: Buffer, isBinary: boolean) => {
      if (isBinary) this.reader.push(d);
      else this.notices.push(d.toString());
    });
    ws.on("close", (code, reason) => this.reader.end(code, reason.toString()));
  }

  /** Opens the socket; rejects with the close code and reason if the edge refuses. */
  static open(url: string, options: { protocols?: string[]; origin?: string } = {}): Promise<RfbClient> {
    const ws = new WebSocket(url, options.protocols ?? [], options.origin ? { origin: options.origin } : {});
    const client = new RfbClient(ws);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(client));
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once("error", reject);
    });
  }

  /**
   * Waits for the server to close the socket. Resolves as soon as its close frame arrives: wrangler
   * dev keeps the TCP connection of a closed Durable Object socket open for a while after the close
   * handshake, which would only slow the tests down.
   */
  closed(timeoutMs = 15_000): Promise<{ code: number; reason: string }> {
    return new Promise((resolve, reject) => {
      if (this.reader.closed) return resolve(this.reader.closed);
      const timer = setTimeout(() => reject(new Error("socket did not close")), timeoutMs);
      const poll = setInterval(() => {
        if (this.ws.readyState === WebSocket.CLOSING) this.ws.terminate();
      }, 20);
      this.ws.once("close", (code, reason) => {
        clearTimeout(timer);
        clearInterval(poll);
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  /** Version, security type None, ClientInit (shared), ServerInit. */
  async handshake(): Promise<ServerInit> {
    const version = (await this.reader.read(12)).toString("latin1");
    if (!/^RFB \d{3}\.\d{3}\n$/.test(version)) throw new Error(`not an RFB greeting: ${JSON.stringify(version)}`);
    this.ws.send(Buffer.from("RFB 003.008\n"));
    const count = (await this.reader.read(1))[0]!;
    if (count === 0) throw new Error("server refused: no security types");
    const types = [...(await this.reader.read(count))];
    if (!types.includes(1)) throw new Error(`server wants security types ${types}, test client speaks None only`);
    this.ws.send(Buffer.from([1]));
    const result = (await this.reader.read(4)).readUInt32BE(0);
    if (result !== 0) throw new Error(`security result ${result}`);
    this.ws.send(Buffer.from([1])); // ClientInit: shared
    const head = await this.reader.read(24);
    const nameLength = head.readUInt32BE(20);
    const name = (await this.reader.read(nameLength)).toString("utf8");
    this.init = { version: version.trim(), width: head.readUInt16BE(0), height: head.readUInt16BE(2), name };
    // 32 bpp true colour, little endian, red at bit 16: each pixel reads as B, G, R, 0.
    const fmt = Buffer.alloc(20);
    fmt[0] = 0; // SetPixelFormat
    fmt.set([32, 24, 0, 1], 4);
    fmt.writeUInt16BE(255, 8);
    fmt.writeUInt16BE(255, 10);
    fmt.writeUInt16BE(255, 12);
    fmt.set([16, 8, 0], 14);
    this.ws.send(fmt);
    const enc = Buffer.alloc(8);
    enc[0] = 2; // SetEncodings: Raw only
    enc.writeUInt16BE(1, 2);
    enc.writeInt32BE(0, 4);
    this.ws.send(enc);
    return this.init;
  }

  requestUpdate(incremental: boolean, x = 0, y = 0, w = this.init!.width, h = this.init!.height): void {
    const req = Buffer.alloc(10);
    req[0] = 3;
    req[1] = incremental ? 1 : 0;
    req.writeUInt16BE(x, 2);
    req.writeUInt16BE(y, 4);
    req.writeUInt16BE(w, 6);
    req.writeUInt16BE(h, 8);
    this.ws.send(req);
  }

  /** Requests the whole screen and returns it as B,G,R,0 pixels, row by row. */
  async readFramebuffer(): Promise<Buffer> {
    const { width, height } = this.init!;
    const fb = Buffer.alloc(width * height * 4);
    let covered = 0;
    this.requestUpdate(false);
    while (covered < width * height) {
      const type = (await this.reader.read(1))[0]!;
      if (type === 2) continue; // Bell
      if (type === 3) {
        const len = (await this.reader.read(7)).readUInt32BE(3);
        await this.reader.read(len);
        continue;
      }
      if (type !== 0) throw new Error(`unexpected server message ${type}`);
      const rects = (await this.reader.read(3)).readUInt16BE(1);
      for (let i = 0; i < rects; i++) {
        const r = await this.reader.read(12);
        const [x, y, w, h] = [r.readUInt16BE(0), r.readUInt16BE(2), r.readUInt16BE(4), r.readUInt16BE(6)];
        const encoding = r.readInt32BE(8);
        if (encoding !== 0) throw new Error(`unexpected encoding ${encoding}`);
        const pixels = await this.reader.read(w * h * 4, 30_000);
        for (let row = 0; row < h; row++) {
          pixels.copy(fb, ((y + row) * width + x) * 4, row * w * 4, (row + 1) * w * 4);
        }
        covered += w * h;
      }
    }
    return fb;
  }

  close(): void {
    this.ws.close();
  }
}

/** Share of pixels within `tolerance` of a colour. */
export function shareOfColour(bgr0: Buffer, colour: { r: number; g: number; b: number }, tolerance = 40): number {
  let hits = 0;
  const n = bgr0.length / 4;
  for (let i = 0; i < n; i++) {
    const b = bgr0[i * 4]!;
    const g = bgr0[i * 4 + 1]!;
    const r = bgr0[i * 4 + 2]!;
    if (Math.abs(r - colour.r) <= tolerance && Math.abs(g - colour.g) <= tolerance && Math.abs(b - colour.b) <= tolerance) hits++;
  }
  return hits / n;
}
