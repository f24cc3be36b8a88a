import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { BlockReader } from "./block-reader.ts";
import { type Block, BlockPool, LARGE_BLOCK_BYTES } from "./read-blocks.ts";

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A server that runs `serve` on its one connection; resolves with its port. */
async function serve(serve: (socket: Socket) => void): Promise<number> {
  const server = createServer(serve);
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

function dial(port: number, pool: BlockPool): { socket: Socket; reader: BlockReader } {
  const reader = new BlockReader(pool);
  const socket = reader.bind(connect({ host: "127.0.0.1", port, onread: reader.onread }));
  return { socket, reader };
}

/** A seeded generator, so that a failing chunking can be reproduced. */
function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

const tick = () => new Promise((r) => setImmediate(r));

/** Writes `data` in random pieces, sometimes waiting between them. */
async function writeChunked(socket: Socket, data: Buffer, rnd: () => number): Promise<void> {
  for (let at = 0; at < data.length; ) {
    const n = Math.min(data.length - at, 1 + Math.floor(rnd() * (rnd() < 0.5 ? 64 : 200_000)));
    if (!socket.write(data.subarray(at, at + n))) await once(socket, "drain");
    at += n;
    if (rnd() < 0.3) await tick();
  }
  socket.end();
}

/**
 * The stream's part, as TunnelStream plays it: keeps segments unsent for a while (as if waiting for
 * a tunnel message), pauses the socket when the reader has no room, resumes when it has, and
 * checks that no segment changed between its read and its release (a block reused in flight).
 */
function consumer(socket: Socket, reader: BlockReader, limitBytes: number, rnd: () => number) {
  const held: { segment: Buffer; copy: Buffer; block: Block }[] = [];
  const received: Buffer[] = [];
  let overwritten = 0;
  let peakHeld = 0;
  let stalled = false;
  const releaseSome = (all = false) => {
    const n = all ? held.length : Math.floor(rnd() * (held.length + 1));
    for (const { segment, copy, block } of held.splice(0, n)) {
      if (!segment.equals(copy)) overwritten++;
      received.push(copy);
      block.release();
    }
  };
  reader.attach(
    {
      data(segment, block) {
        held.push({ segment, copy: Buffer.from(segment), block });
        peakHeld = Math.max(peakHeld, reader.heldBytes);
        if (!reader.hasRoom) socket.pause();
      },
      room() {
        if (!stalled && socket.isPaused() && reader.hasRoom) socket.resume();
      },
    },
    limitBytes,
  );
  const timer = setInterval(() => {
    if (!stalled) releaseSome();
  }, 1);
  return {
    received,
    get overwritten() {
      return overwritten;
    },
    get peakHeld() {
      return peakHeld;
    },
    held,
    stall(on: boolean) {
      stalled = on;
      if (!on) releaseSome(true);
      if (!on && socket.isPaused() && reader.hasRoom) socket.resume();
    },
    done: once(socket, "end").then(() => {
      clearInterval(timer);
      releaseSome(true);
    }),
  };
}

describe("BlockReader", () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`bytes arrive intact and in order, none overwritten while unsent (random chunking ${seed})`, async () => {
      const rnd = random(seed);
      const data = randomBytes(3 * 1024 * 1024 + Math.floor(rnd() * 100_000));
      const port = await serve((s) => void writeChunked(s, data, rnd));
      const pool = new BlockPool();
      const { socket, reader } = dial(port, pool);
      const c = consumer(socket, reader, 512 * 1024, rnd);
      await c.done;
      expect(c.overwritten).toBe(0);
      expect(Buffer.concat(c.received).equals(data)).toBe(true);
      expect(c.peakHeld).toBeLessThanOrEqual(512 * 1024);
      await once(socket, "close");
      expect(pool.outBytes).toBe(0); // every block went back
    });
  }

  it("a stalled stream stops reading at its bound, and resumes when its blocks come back", async () => {
    const data = randomBytes(16 * 1024 * 1024);
    let pushed = 0;
    const port = await serve((s) => {
      s.on("drain", () => {});
      const push = () => {
        while (pushed < data.length) {
          const n = Math.min(64 * 1024, data.length - pushed);
          const more = s.write(data.subarray(pushed, pushed + n));
          pushed += n;
          if (!more) return void s.once("drain", push);
        }
        s.end();
      };
      push();
    });
    const pool = new BlockPool();
    const { socket, reader } = dial(port, pool);
    const c = consumer(socket, reader, 256 * 1024, random(9));
    c.stall(true);
    await new Promise((r) => setTimeout(r, 300));
    const heldWhileStalled = c.held.reduce((n, h) => n + h.segment.length, 0);
    expect(reader.heldBytes).toBeLessThanOrEqual(256 * 1024);
    expect(heldWhileStalled).toBeLessThanOrEqual(256 * 1024 - LARGE_BLOCK_BYTES);
    expect(socket.isPaused()).toBe(true);
    expect(pushed).toBeLessThan(data.length); // the rest waits in the kernel and the server
    c.stall(false);
    await c.done;
    expect(c.overwritten).toBe(0);
    expect(Buffer.concat(c.received).equals(data)).toBe(true);
  });

  it("every stream stops reading while the pool is full, and resumes when it is not", async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const port = await serve((s) => s.end(data));
    const pool = new BlockPool(3 * LARGE_BLOCK_BYTES);
    const a = dial(port, pool);
    const b = dial(port, pool);
    const ca = consumer(a.socket, a.reader, 1024 * 1024, random(10));
    const cb = consumer(b.socket, b.reader, 1024 * 1024, random(11));
    ca.stall(true);
    cb.stall(true);
    await new Promise((r) => setTimeout(r, 200));
    // Each holds at least its read target; together no more than the limit plus one block each.
    expect(pool.outBytes).toBeLessThanOrEqual(3 * LARGE_BLOCK_BYTES + 2 * LARGE_BLOCK_BYTES);
    expect(a.reader.hasRoom || b.reader.hasRoom).toBe(false);
    ca.stall(false);
    cb.stall(false);
    await Promise.all([ca.done, cb.done]);
    expect(Buffer.concat(ca.received).equals(data)).toBe(true);
    expect(Buffer.concat(cb.received).equals(data)).toBe(true);
  });

  it("a stream holding nothing but its read target may always read: a pool full of idle consoles' targets stops none for good", async () => {
    const pool = new BlockPool(2 * LARGE_BLOCK_BYTES);
    // Other consoles' idle read targets fill the pool, with nothing of theirs unsent: no block
    // would ever come back to wake anyone.
    const others = [pool.take(LARGE_BLOCK_BYTES), pool.take(LARGE_BLOCK_BYTES)];
    expect(pool.full).toBe(true);
    const data = randomBytes(512 * 1024);
    const port = await serve((s) => s.end(data));
    const { socket, reader } = dial(port, pool);
    const c = consumer(socket, reader, 512 * 1024, random(13));
    await c.done;
    expect(Buffer.concat(c.received).equals(data)).toBe(true);
    // One block at a time past the pool's bound: its read target and one retired block at most.
    expect(c.peakHeld).toBeLessThanOrEqual(2 * LARGE_BLOCK_BYTES);
    for (const b of others) pool.give(b);
  });

  it("before a stream attaches, the socket is an ordinary Readable: data, pause, unshift; the attach reads what was put back first", async () => {
    const data = randomBytes(1024 * 1024);
    const port = await serve((s) => {
      s.write("RFB 003.008\n");
      s.once("data", () => s.end(data));
    });
    const pool = new BlockPool();
    const { socket, reader } = dial(port, pool);
    const [first] = (await once(socket, "data")) as [Buffer];
    expect(first.toString()).toBe("RFB 003.008\n");
    socket.pause();
    socket.unshift(first);
    const c = consumer(socket, reader, 512 * 1024, random(12));
    const drained: Buffer[] = [];
    for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) drained.push(chunk);
    socket.resume();
    socket.write("RFB 003.008\n");
    await c.done;
    expect(Buffer.concat(drained).toString()).toBe("RFB 003.008\n");
    expect(Buffer.concat(c.received).equals(data)).toBe(true);
  });

  it("the upstream closing mid-stream: blocks still unsent go back when released, the read target at once", async () => {
    const port = await serve((s) => s.end(randomBytes(300 * 1024)));
    const pool = new BlockPool();
    const { socket, reader } = dial(port, pool);
    const held: Block[] = [];
    reader.attach({ data: (_segment, block) => void held.push(block), room() {} }, 512 * 1024);
    socket.resume();
    await once(socket, "close");
    expect(held.length).toBeGreaterThan(0);
    expect(pool.outBytes).toBeGreaterThan(0); // the unsent segments' blocks
    for (const block of held.splice(0)) block.release();
    expect(pool.outBytes).toBe(0);
  });
});
