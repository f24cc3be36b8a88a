/**
 * Reused memory for reading console sockets. Node's stream mode allocates a fresh 64 KiB buffer
 * for every socket read, and collecting them was the connector's largest cost per byte (see
 * bench/analysis.md); console bytes are read into these blocks instead (block-reader.ts), copied
 * once into a tunnel message, and the block comes back here.
 *
 * Two sizes: bulk streams read LARGE blocks (Node's own read size, so as many reads as before),
 * idle and interactive streams SMALL ones, so a thousand idle consoles do not each keep 64 KiB
 * waiting for their next read.
 *
 * The pool's bound is soft but exact: once LIMIT_BYTES are out, every stream that holds unsent
 * bytes stops reading (it is told again when blocks come back); one that holds only the block its
 * socket reads into next goes on, one block at a time (block-reader.ts `hasRoom`: the blocks out
 * may all be idle consoles' read targets, which nothing would give back). So at most LIMIT_BYTES
 * plus two blocks per open console are ever out.
 */

/** A bulk read: as much as Node reads at once in stream mode. */
export const LARGE_BLOCK_BYTES = 64 * 1024;
/** An interactive stream's read (a keystroke's echo, a cursor, a small screen update). */
export const SMALL_BLOCK_BYTES = 4 * 1024;
/** Blocks out at once across every stream before all of them stop reading: 128 full windows. */
export const POOL_LIMIT_BYTES = 64 * 1024 * 1024;
/**
 * Free blocks kept for reuse (16 large ones: two bulk streams' rotation); beyond that a returned
 * block is left to the garbage collector. More would stay resident after a burst for nothing: the
 * stalled-reader benchmark counted 8 MiB kept as 700 KiB per stalled stream.
 */
export const POOL_KEEP_BYTES = 1024 * 1024;

/** One block of read memory; `refs` counts the stream's unsent segments that point into it. */
export class Block {
  readonly bytes: Buffer;
  refs = 0;
  /** Called by the stream once a segment of this block has been copied out (block-reader.ts). */
  release: () => void = () => {};

  constructor(size: number) {
    this.bytes = Buffer.allocUnsafe(size);
  }
}

export class BlockPool {
  readonly limitBytes: number;
  readonly keepBytes: number;
  /** Bytes of blocks handed out and not yet given back. */
  outBytes = 0;
  private freeBytes = 0;
  private readonly free = new Map<number, Block[]>();
  /** Told once the pool is below its limit again (readers that stopped for it). */
  private readonly waiting = new Set<() => void>();

  constructor(limitBytes = POOL_LIMIT_BYTES, keepBytes = POOL_KEEP_BYTES) {
    this.limitBytes = limitBytes;
    this.keepBytes = keepBytes;
  }

  /** True while streams must not read more (the pool's bound). */
  get full(): boolean {
    return this.outBytes >= this.limitBytes;
  }

  /** A block of `size` bytes; never refuses (the caller checks `full` before reading more). */
  take(size: number): Block {
    const block = this.free.get(size)?.pop();
    this.outBytes += size;
    if (block) {
      this.freeBytes -= size;
      block.refs = 0;
      return block;
    }
    return new Block(size);
  }

  give(block: Block): void {
    const size = block.bytes.length;
    const wasFull = this.full;
    this.outBytes -= size;
    block.release = () => {};
    if (this.freeBytes + size <= this.keepBytes) {
      let list = this.free.get(size);
      if (!list) this.free.set(size, (list = []));
      list.push(block);
      this.freeBytes += size;
    }
    if (wasFull && !this.full) for (const wake of [...this.waiting]) wake();
  }

  /** `wake` runs each time the pool drops below its limit, until `forget`. */
  watch(wake: () => void): void {
    this.waiting.add(wake);
  }

  forget(wake: () => void): void {
    this.waiting.delete(wake);
  }
}

/** The connector's one pool: every upstream socket reads from it. */
export const readBlocks = new BlockPool();
