import { describe, expect, it } from "vitest";
import { StallWatch } from "./console-stall.ts";

describe("telling a still picture from a stuck console", () => {
  it("probes only when the person acts after a quiet spell, and says nothing while the probe is answered", () => {
    const w = new StallWatch(5000, 5000);
    w.start(0);
    // A still screen nobody touches: no probe, ever (the site object may hibernate).
    expect(w.tick(60_000)).toEqual({ probe: false, stalledMs: null });
    w.received(60_000);
    w.acted();
    expect(w.tick(64_999)).toEqual({ probe: false, stalledMs: null });
    expect(w.tick(65_000)).toEqual({ probe: true, stalledMs: null });
    // One probe at a time.
    w.acted();
    expect(w.tick(66_000)).toEqual({ probe: false, stalledMs: null });
    w.received(66_100);
    // Answered: the next probe needs another act and another quiet spell.
    expect(w.tick(80_000).probe).toBe(false);
    w.acted();
    expect(w.tick(80_001).probe).toBe(true);
  });

  it("says how long an unanswered probe has waited, and clears when bytes flow", () => {
    const w = new StallWatch(5000, 5000);
    w.start(0);
    w.acted();
    expect(w.tick(5000).probe).toBe(true);
    expect(w.tick(9999).stalledMs).toBeNull();
    expect(w.tick(10_000).stalledMs).toBe(5000);
    expect(w.tick(17_000).stalledMs).toBe(12_000);
    w.received(17_500);
    expect(w.tick(18_000)).toEqual({ probe: false, stalledMs: null });
  });

  it("does nothing before the handshake or after the console closed", () => {
    const w = new StallWatch(5000, 5000);
    w.acted();
    expect(w.tick(60_000)).toEqual({ probe: false, stalledMs: null });
    w.start(0);
    w.acted();
    w.tick(5000);
    w.stop();
    expect(w.tick(60_000)).toEqual({ probe: false, stalledMs: null });
  });
});
