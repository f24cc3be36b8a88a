import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff.ts";

describe("reconnect backoff", () => {
  it("doubles up to the cap, with jitter in the upper half, and starts over after reset", () => {
    const low = new Backoff(1000, 60_000, () => 0);
    const high = new Backoff(1000, 60_000, () => 1);
    const lows = Array.from({ length: 9 }, () => low.next());
    const highs = Array.from({ length: 9 }, () => high.next());
    expect(lows).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(highs).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    low.reset();
    expect(low.next()).toBe(500);
  });
});
