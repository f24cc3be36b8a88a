import { describe, expect, it } from "vitest";
import { encodeHeader, encodeMark, encodeRecord, RecordKind } from "../site/recording-format.ts";
import { clock, timeline, verifyChain } from "./player-timeline.ts";

const header = encodeHeader({ format: 1, id: "s.0", site: "s", hypervisor: "h", vm: "v", user: "u", startedAt: "2026-01-01T00:00:00.000Z", recordInput: true });
const seg1 = Uint8Array.from([...encodeMark(0, { mark: "connect" }), ...encodeRecord(RecordKind.server, 10, Uint8Array.from([1, 2, 3]))]);
const seg2 = Uint8Array.from([
  ...encodeMark(500, { mark: "input", count: 1 }),
  ...encodeMark(900, { mark: "input", count: 2 }), // same burst
  ...encodeMark(5000, { mark: "input", count: 1 }), // a new one
  ...encodeRecord(RecordKind.server, 6000, Uint8Array.from([4])),
  ...encodeMark(7000, { mark: "end", code: 1000, reason: "bye" }),
]);
const file = Uint8Array.from([...header, ...seg1, ...seg2]);

async function chainOf(...parts: Uint8Array[]): Promise<string> {
  let c = new Uint8Array(await crypto.subtle.digest("SHA-256", Uint8Array.from(parts[0]!)));
  for (const p of parts.slice(1)) c = new Uint8Array(await crypto.subtle.digest("SHA-256", Uint8Array.from([...c, ...p])));
  return [...c].map((x) => x.toString(16).padStart(2, "0")).join("");
}

describe("player timeline", () => {
  it("gives the console's chunks with their times, marks with input bursts merged, and the duration", () => {
    const t = timeline(file);
    expect(t.chunks.map((c) => [c.ms, [...c.bytes]])).toEqual([[10, [1, 2, 3]], [6000, [4]]]);
    expect(t.marks.map((m) => [m.kind, m.ms])).toEqual([["connect", 0], ["input", 500], ["input", 5000], ["end", 7000]]);
    expect(t.duration).toBe(7000);
    expect(clock(t.duration)).toBe("0:07");
  });

  it("verifies the chain, and not when a segment was altered or dropped", async () => {
    const chain = await chainOf(header, seg1, seg2);
    expect(await verifyChain(file, [seg1.length, seg2.length], chain)).toBe(true);
    const altered = file.slice();
    altered[altered.length - 3]! ^= 1;
    expect(await verifyChain(altered, [seg1.length, seg2.length], chain)).toBe(false);
    expect(await verifyChain(Uint8Array.from([...header, ...seg2]), [seg2.length], chain)).toBe(false);
    expect(await verifyChain(file, [seg1.length, seg2.length], "")).toBeNull();
  });
});
