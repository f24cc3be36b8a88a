/**
 * A bounded number of console handshakes in flight per upstream server; the rest wait their turn.
 *
 * Why: every console reaches a VNC server from the connector's one address, and VNC servers defend
 * themselves per address. TigerVNC allows 5 unauthenticated connections per host and blacklists an
 * address after a few abandoned handshakes: 40 consoles opened at once (viewers reconnecting after
 * an edge restart) gave 4-7 working ones and locked everyone out for a while. A handshake is in
 * flight from the dial until the RFB handshake is done (see ../tunnel/rfb-handshake.ts) or the
 * stream ended.
 */
import type { Duplex } from "node:stream";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { UpstreamError } from "./upstream.ts";

export const DEFAULT_MAX_CONCURRENT_HANDSHAKES = 2;
/** The longest an open waits for its turn before the person is told to try again. */
export const HANDSHAKE_QUEUE_WAIT_MS = 30_000;
/** More waiters than this on one server are refused at once: every queue has a bound. */
const MAX_WAITING = 1000;

/** The right to be in a handshake with one server; `release` is idempotent. */
export interface HandshakeSlot {
  release(): void;
}

interface Waiter {
  grant(): void;
  timer: NodeJS.Timeout;
}

interface ServerState {
  active: number;
  waiting: Waiter[];
}

export class HandshakeLimiter {
  private readonly max: number;
  private readonly waitMs: number;
  private readonly servers = new Map<string, ServerState>();

  constructor(max = DEFAULT_MAX_CONCURRENT_HANDSHAKES, waitMs = HANDSHAKE_QUEUE_WAIT_MS) {
    this.max = max;
    this.waitMs = waitMs;
  }

  /** Handshakes in flight with `server` now (for tests and metrics). */
  inFlight(server: string): number {
    return this.servers.get(server)?.active ?? 0;
  }

  /**
   * Waits for a turn with `server` (FIFO). Rejects with 4504 after waiting `waitMs`, and with the
   * stream's own end when `signal` aborts (the viewer left).
   */
  acquire(server: string, signal: AbortSignal): Promise<HandshakeSlot> {
    let state = this.servers.get(server);
    if (!state) {
      state = { active: 0, waiting: [] };
      this.servers.set(server, state);
    }
    const s = state;
    if (signal.aborted) return Promise.reject(new UpstreamError(CloseCode.ended, "The console request was cancelled."));
    if (s.active < this.max) {
      s.active++;
      return Promise.resolve(this.slot(server, s));
    }
    if (s.waiting.length >= MAX_WAITING) {
      return Promise.reject(
        new UpstreamError(CloseCode.upstreamTimeout, "Too many consoles are waiting for this VNC server: try again in a moment."),
      );
    }
    return new Promise<HandshakeSlot>((resolve, reject) => {
      const leave = () => {
        clearTimeout(waiter.timer);
        signal.removeEventListener("abort", onAbort);
        const at = s.waiting.indexOf(waiter);
        if (at >= 0) s.waiting.splice(at, 1);
        this.forget(server, s);
      };
      const onAbort = () => {
        leave();
        reject(new UpstreamError(CloseCode.ended, "The console request was cancelled."));
      };
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          signal.removeEventListener("abort", onAbort);
          resolve(this.slot(server, s));
        },
        timer: setTimeout(() => {
          leave();
          reject(
            new UpstreamError(
              CloseCode.upstreamTimeout,
              // Close reasons hold 123 bytes: the server's address is in the connector's log line.
              `The VNC server is busy with consoles still connecting, or not answering: this one waited ${Math.round(this.waitMs / 1000)} s. Try again in a moment.`,
            ),
          );
        }, this.waitMs),
      };
      waiter.timer.unref?.();
      signal.addEventListener("abort", onAbort, { once: true });
      s.waiting.push(waiter);
    });
  }

  private slot(server: string, s: ServerState): HandshakeSlot {
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const next = s.waiting.shift();
        if (next) next.grant(); // the turn passes on: `active` stays the same
        else {
          s.active--;
          this.forget(server, s);
        }
      },
    };
  }

  private forget(server: string, s: ServerState): void {
    if (s.active === 0 && s.waiting.length === 0 && this.servers.get(server) === s) this.servers.delete(server);
  }
}

/**
 * The slot travels with the console stream an upstream returns, so the tunnel can release it when
 * the RFB handshake is done; closing the stream releases it in any case.
 */
const slots = new WeakMap<Duplex, HandshakeSlot>();

export function holdSlot(stream: Duplex, slot: HandshakeSlot): Duplex {
  slots.set(stream, slot);
  stream.once("close", () => slot.release());
  return stream;
}

/** The slot of a console stream (released by the caller when the handshake is done). */
export function slotOf(stream: Duplex): HandshakeSlot | undefined {
  return slots.get(stream);
}

/**
 * Runs `open` within a turn with `server`; the slot is released if the open fails, once the
 * connector has finished the server's handshake if it is finishing it (UpstreamError.finishing):
 * while a server does not answer, the connector opens no more connections to it.
 */
export async function withSlot(
  limiter: HandshakeLimiter,
  server: string,
  signal: AbortSignal,
  open: () => Promise<Duplex>,
): Promise<Duplex> {
  const slot = await limiter.acquire(server, signal);
  try {
    return holdSlot(await open(), slot);
  } catch (err) {
    if (err instanceof UpstreamError && err.finishing) void err.finishing.finally(() => slot.release());
    else slot.release();
    throw err;
  }
}
