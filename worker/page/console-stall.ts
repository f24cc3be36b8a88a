/**
 * Telling a still picture from a stuck console. A VNC server sends nothing while the screen does
 * not change, so silence alone means nothing; but it must answer a non-incremental
 * FramebufferUpdateRequest at once. When the person acts on the screen (a key, the pointer) after
 * at least `quietMs` without console bytes, the page sends one for a single pixel (the probe); if
 * nothing at all arrives for `stalledMs` after it, the connector or the VNC server is stuck and the
 * page says so (the edge's notices are not console bytes). Any console byte clears it.
 *
 * Why only after the person acts: a probe is a message to the site object, and a probe every quiet
 * spell would keep an idle console's object from ever hibernating (workerd evicts after ~10 s with
 * no events), which is what keeps an idle console cheap. A frozen picture matters to someone who is
 * looking and doing something; their input wakes the object anyway (view-only input is not sent,
 * but still counts here). Pure logic: the page feeds it the clock, the person's acts and the bytes.
 */
/** Quiet this long before probing: one tiny request and answer per quiet spell, not per act. */
export const STALL_QUIET_MS = 10_000;
export const STALL_AFTER_MS = 5000;

export interface StallTick {
  /** Send the probe now. */
  probe: boolean;
  /** How long the probe has gone unanswered, once that is long enough to say so; else null. */
  stalledMs: number | null;
}

export class StallWatch {
  #lastBytes = 0;
  #actedSinceBytes = false;
  #probeSentAt: number | null = null;
  #watching = false;
  readonly quietMs: number;
  readonly stalledAfterMs: number;

  constructor(quietMs = STALL_QUIET_MS, stalledAfterMs = STALL_AFTER_MS) {
    this.quietMs = quietMs;
    this.stalledAfterMs = stalledAfterMs;
  }

  /** The RFB handshake finished: probes may be sent from now on. */
  start(now: number): void {
    this.#watching = true;
    this.#lastBytes = now;
    this.#actedSinceBytes = false;
    this.#probeSentAt = null;
  }

  stop(): void {
    this.#watching = false;
    this.#probeSentAt = null;
  }

  /** The person pressed a key or used the pointer over the screen. */
  acted(): void {
    this.#actedSinceBytes = true;
  }

  /** Console bytes arrived: the console is alive. */
  received(now: number): void {
    this.#lastBytes = now;
    this.#actedSinceBytes = false;
    this.#probeSentAt = null;
  }

  tick(now: number): StallTick {
    if (!this.#watching) return { probe: false, stalledMs: null };
    if (this.#probeSentAt === null) {
      if (!this.#actedSinceBytes || now - this.#lastBytes < this.quietMs) return { probe: false, stalledMs: null };
      this.#probeSentAt = now;
      return { probe: true, stalledMs: null };
    }
    const waited = now - this.#probeSentAt;
    return { probe: false, stalledMs: waited >= this.stalledAfterMs ? waited : null };
  }
}

/** FramebufferUpdateRequest (RFB 6.4.3), not incremental, for the pixel at 0,0. */
export const PROBE_MESSAGE: Uint8Array<ArrayBuffer> = new Uint8Array([3, 0, 0, 0, 0, 0, 0, 1, 0, 1]);
