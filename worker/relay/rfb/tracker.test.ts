/** The whole tracker: arbitrary bytes both ways. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StreamFault } from "../stream-fault.ts";
import { clientGen, PROPERTY_TIMEOUT_MS, resumeArb, RUNS, serverGen, serverMessage, viewOnlyOps } from "./rfb-generators.ts";
import { drive, handshake, setEncodings, type Op } from "./rfb-test-kit.ts";

describe("properties", () => {
  it(`arbitrary bytes both ways: only StreamFault, and only when view-only (${RUNS} cases)`, () => {
    // Arbitrary bytes either way, mixed with well-formed messages so deeper states are reached too.
    const opArb = fc.oneof(
      fc.tuple(fc.constantFrom<"s" | "c">("s", "c"), fc.uint8Array({ maxLength: 48 })).map(([d, b]): Op => [d, [...b]]),
      serverGen.map((g): Op => ["s", serverMessage(g, 4, 3)]),
      clientGen.map((g): Op => ["c", viewOnlyOps([{ ...g, kind: g.kind % 13 }]).ops.flatMap((o) => o[1])]),
    );
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.nat(3), fc.array(opArb, { maxLength: 12 }), resumeArb, (viewOnly, fenceCredit, prefix, ops, resumeAt) => {
        const hs = prefix === 0 ? [] : handshake(prefix === 1 ? 3 : 8, prefix === 3 ? 2 : 1, 0).steps;
        const extra: Op[] = prefix > 0 ? [["c", setEncodings([0, -312, -316])]] : [];
        try {
          const d = drive({ viewOnly, fenceCredit }, [...hs, ...extra, ...ops], [], resumeAt);
          expect(JSON.stringify(d.tracker.snapshot()).length).toBeLessThan(1024);
        } catch (e) {
          expect(e).toBeInstanceOf(StreamFault);
          // Any viewer is closed for a security type the server did not offer; otherwise only view-only.
          if (!/security type/.test((e as Error).message) || /cannot be inspected/.test((e as Error).message)) expect(viewOnly).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  }, PROPERTY_TIMEOUT_MS);
});
