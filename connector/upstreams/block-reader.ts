/**
 * Reads one upstream socket into blocks from the pool (read-blocks.ts) instead of a fresh buffer
 * per read: `net.connect` and `tls.connect` take `onread` (Node ≥ 12 / 20 alike), after which Node
 * reads into the memory we give it and calls us with the byte count.
 *
 * Two modes. Until a console stream attaches (the XAPI reply header, the greeting wait, the
 * handshake finisher) every read is copied out and pushed into the socket's Readable side, so
 * those see an ordinary Duplex with 'data', pause, unshift. Once attached, each read becomes a
 * segment of its block, handed to the sink without a copy; the block may not be read into again
 * until every segment in it was copied into a tunnel message and released.
 *
 * Bound: a stream holds at most `limitBytes` of blocks (its window, 512 KiB: eight 64 KiB blocks),
 * the block its socket reads into next included. `hasRoom` is false once one more block could
 * exceed that, or while the pool is full; the stream then pauses its socket (that pause is the
 * flow control) and `room` tells it when to resume. Reads go on into the current block's free
 * tail; a new block is taken only when less than a quarter of it is left.
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type Block, type BlockPool, LARGE_BLOCK_BYTES, readBlocks, SMALL_BLOCK_BYTES } from "./read-blocks.ts";

export interface BlockSink {
  /** `segment` points into `block`; call `block.release()` once it has been copied out. */
  data(segment: Buffer, block: Block): void;
  /** `hasRoom` may have turned true: resume reading if nothing else holds it back. */
  room(): void;
}

const readers = new WeakMap<Duplex, BlockReader>();

/** The block reader of a socket opened with `blockReading`, if any. */
export function blockReaderOf(stream: Duplex): BlockReader | undefined {
  return readers.get(stream);
}

/**
 * Connect options that make the socket read into blocks; call `bind` with the socket right after
 * connecting: `const r = new BlockReader(); const s = connect({ ..., onread: r.onread }); r.bind(s)`.
 */
export class BlockReader {
  private readonly pool: BlockPool;
  private target: Block | null;
  private offset = 0;
  private socket: Socket | null = null;
  private sink: BlockSink | null = null;
  private limitBytes = Infinity;
  /** Bytes of the blocks this reader holds: the read target and those with unsent segments. */
  heldBytes = 0;
  private readonly wake = () => this.sink?.room();
  private closed = false;

  readonly onread: { buffer: () => Uint8Array; callback: (nread: number, buf: Uint8Array) => boolean };

  constructor(pool: BlockPool = readBlocks) {
    this.pool = pool;
    this.target = this.take(SMALL_BLOCK_BYTES);
    this.onread = { buffer: () => this.next(), callback: (nread) => this.onRead(nread) };
  }

  bind<S extends Socket>(socket: S): S {
    this.socket = socket;
    readers.set(socket, this);
    // No read follows 'close': the target may go back to the pool.
    socket.once("close", () => this.close());
    return socket;
  }

  /** Console bytes go to `sink` from now on, at most `limitBytes` of blocks at a time. */
  attach(sink: BlockSink, limitBytes: number): void {
    this.sink = sink;
    this.limitBytes = limitBytes;
    this.pool.watch(this.wake);
  }

  /** Back to copying reads into the socket's Readable side (the handshake finisher reads it so). */
  detach(): void {
    this.sink = null;
    this.limitBytes = Infinity;
    this.pool.forget(this.wake);
  }

  /**
   * Whether the socket may read more: one more block stays within the stream's bound and the
   * pool's. A stream that holds nothing but its read target may always read, full pool or not:
   * the pool may be full of idle consoles' targets, which no send would ever give back, and
   * stopping every stream then would stop them for good. Past the pool's bound each stream so
   * goes one block at a time (its target and one retired block at most).
   */
  get hasRoom(): boolean {
    if (this.heldBytes + LARGE_BLOCK_BYTES > this.limitBytes) return false;
    return !this.pool.full || this.heldBytes <= (this.target?.bytes.length ?? 0);
  }

  // ---- Node's onread callbacks ---------------------------------------------------------------------

  /** The memory the next read goes into (Node asks after every read, and once at the start). */
  private next(): Uint8Array {
    const target = this.target!;
    return this.offset === 0 ? target.bytes : target.bytes.subarray(this.offset);
  }

  private onRead(nread: number): boolean {
    const target = this.target;
    if (!target || nread <= 0) return true;
    const sink = this.sink;
    if (!sink) {
      // Not a console stream yet: an ordinary Readable, at the cost of a copy per read (the few
      // handshake reads). The target is free again at once.
      return this.socket!.push(Buffer.copyBytesFrom(target.bytes, this.offset, nread));
    }
    const offered = target.bytes.length - this.offset;
    const segment = target.bytes.subarray(this.offset, this.offset + nread);
    this.offset += nread;
    target.refs++;
    if (target.bytes.length - this.offset < target.bytes.length / 4) {
      // Retire this block (it goes back once its segments are sent) and read into a new one: a
      // large one if the read filled all it was offered (more was probably waiting).
      const size = nread === offered ? LARGE_BLOCK_BYTES : SMALL_BLOCK_BYTES;
      this.target = this.take(size);
      this.offset = 0;
    }
    // Last: the sink may release the segment (or close the stream) before returning.
    sink.data(segment, target);
    return true;
  }

  // ---- blocks ------------------------------------------------------------------------------------

  private take(size: number): Block {
    const block = this.pool.take(size);
    this.heldBytes += size;
    block.release = () => this.released(block);
    return block;
  }

  private released(block: Block): void {
    if (--block.refs > 0 || block === this.target) return;
    this.give(block);
    if (this.hasRoom) this.sink?.room();
  }

  private give(block: Block): void {
    this.heldBytes -= block.bytes.length;
    this.pool.give(block);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pool.forget(this.wake);
    const target = this.target;
    this.target = null;
    // Blocks with unsent segments go back when the stream releases them (its teardown does).
    if (target && target.refs === 0) this.give(target);
  }
}
