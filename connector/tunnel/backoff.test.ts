import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff.ts";

describe("reconnect backoff", () => {
  it("doubles up to the cap, with jitter in the upper half", () => {
    const low = new Backoff(1000, 60_000, () => 0);
    const high = new Backoff(1000, 60_000, () => 1);
    const lows = Array.from({ length: 9 }, () => low.next());
    const highs = Array.from({ length: 9 }, () => high.next());
    expect(lows).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(highs).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
  });

  it("keeps growing when the edge accepts the tunnel and drops it at once", () => {
    let now = 0;
    const backoff = new Backoff(1000, 60_000, () => 1, 30_000, () => now);
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      backoff.connected(); // WELCOME arrives…
      now += 2_000; // …and the edge drops the tunnel two seconds later
      const delay = backoff.next();
      delays.push(delay);
      now += delay;
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 32000]);
  });

  it("starts over after a tunnel that stayed up for the grace period", () => {
    let now = 0;
    const backoff = new Backoff(1000, 60_000, () => 1, 30_000, () => now);
    for (let i = 0; i < 5; i++) backoff.next();
    backoff.connected();
    now += 29_999;
    expect(backoff.next()).toBe(32000); // up just short of the grace: no reset
    backoff.connected();
    now += 30_000;
    expect(backoff.next()).toBe(1000);
    // a failed dial after that (no WELCOME) goes on from there
    expect(backoff.next()).toBe(2000);
  });
});
