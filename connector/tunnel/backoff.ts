/**
 * Reconnect delays: exponential with "equal jitter" (half fixed, half random), so a fleet of
 * connectors cut by one edge restart does not come back in lock step, yet none retries at once.
 *
 * The delay starts over only after a tunnel stayed up for `stableMs` (like cloudflared's
 * supervisor grace period): an edge that accepts the connector and drops it at once must not be
 * redialled every second forever.
 */
export const STABLE_TUNNEL_MS = 30_000;

export class Backoff {
  private attempt = 0;
  private upSince: number | null = null;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;
  private readonly stableMs: number;
  private readonly now: () => number;

  constructor(
    baseMs = 1000,
    maxMs = 60_000,
    random: () => number = Math.random,
    stableMs = STABLE_TUNNEL_MS,
    now: () => number = Date.now,
  ) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.random = random;
    this.stableMs = stableMs;
    this.now = now;
  }

  /** The tunnel is up (the edge sent WELCOME). */
  connected(): void {
    this.upSince = this.now();
  }

  /** The delay before the next dial, after a failed dial or a tunnel that ended. */
  next(): number {
    if (this.upSince !== null && this.now() - this.upSince >= this.stableMs) this.attempt = 0;
    this.upSince = null;
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }
}
