/** The console's direction: every message framed, however the stream is cut (properties). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cutsArb, PROPERTY_TIMEOUT_MS, resumeArb, RUNS, serverGen, serverMessage } from "./rfb-generators.ts";
import {
  clientFence,
  drive,
  fbu,
  FENCED,
  fill,
  flat,
  FRAMEABLE,
  handshake,
  isInjectedFence,
  PF16,
  setEncodings,
  setPixelFormat,
  TUNING,
  type Bytes,
  type Op,
} from "./rfb-test-kit.ts";
import { RfbTracker } from "./tracker.ts";

describe("properties", () => {
  it(`console direction: every supported message and encoding framed, fences only at boundaries (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.array(serverGen, { maxLength: 12 }), cutsArb, resumeArb,
        (viewOnly, pf16, gens, cuts, resumeAt) => {
          const mode = { viewOnly, fenceCredit: true };
          const hs = handshake(8, 1, 1);
          const pre: Op[] = [["c", [...(pf16 ? setPixelFormat(PF16) : []), ...setEncodings([...FRAMEABLE, ...TUNING])]]];
          const bpp = pf16 ? 2 : 4;
          const tp = pf16 ? 2 : 3;
          const messages = gens.map((g) => serverMessage(g, bpp, tp));
          const first = drive(mode, [...hs.steps, ...pre]);
          const hsBytes = flat(first.toViewer).length;
          const d = drive(mode, messages.map((m): Op => ["s", m]), cuts, resumeAt, first.tracker);
          expect(d.tracker.framing).toBe("exact");
          expect(d.maxSnapshot).toBeLessThan(1024);
          // Identical bytes once our fences are taken out, and fences only between messages.
          const boundaries = new Set<number>();
          let at = 0;
          for (const m of messages) boundaries.add((at += m.length));
          const data: Bytes = [];
          const fences: Uint8Array[] = [];
          for (const p of d.toViewer) {
            if (isInjectedFence(p)) {
              expect(boundaries.has(data.length)).toBe(true);
              fences.push(p);
            } else data.push(...p);
          }
          expect(Buffer.from(data).equals(Buffer.from(messages.flat()))).toBe(true);
          if (messages.length > 0) expect(isInjectedFence(d.toViewer.at(-1)!)).toBe(true);
          // Answering every fence (as noVNC does) proves everything was processed.
          const answers = fences.map((f) => clientFence(0, [...f.subarray(9)]));
          const r = drive(mode, answers.map((a): Op => ["c", a]), cuts, [], d.tracker);
          expect(r.toServer).toEqual([]);
          if (fences.length > 0) {
            expect(r.consumed).toBe(hsBytes + d.toViewer.reduce((n, p) => n + p.length, 0));
            expect(r.consumedInput).toBe(hsBytes + data.length);
          }
        }),
      { numRuns: RUNS },
    );
  }, PROPERTY_TIMEOUT_MS);

  it(`console direction: cut anywhere, inside headers or skipped bodies, the parse is the same (${RUNS} cases)`, () => {
    // A header whole in a chunk is read where it lies; one split across chunks is collected byte
    // by byte; bodies are skipped by length. Whatever the cuts, the console's bytes come out
    // unchanged, the parser ends in the same place, and fences differ only in where they go.
    const bigRaw = fc.record({ w: fc.integer({ min: 1, max: 300 }), h: fc.integer({ min: 1, max: 40 }) }).map(({ w, h }) => fbu([{ enc: 0, w, h, body: fill(w * h * 4) }]));
    const msgArb = fc.oneof({ weight: 4, arbitrary: serverGen.map((g) => serverMessage(g, 4, 3)) }, { weight: 1, arbitrary: bigRaw });
    fc.assert(
      fc.property(fc.array(msgArb, { minLength: 1, maxLength: 10 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }), fc.boolean(),
        (messages, fractions, bytewise) => {
          const hs = handshake(8, 1, 1);
          const pre: Op[] = [["c", setEncodings([...FRAMEABLE, ...TUNING])]];
          const start = () => drive(FENCED, [...hs.steps, ...pre]).tracker;
          const stream = messages.flat();
          // The first message of a short stream, cut at every byte: every header collected.
          const limit = bytewise ? Math.min(stream.length, 600) : 0;
          const cuts = [...fractions.map((f) => Math.floor(f * stream.length)), ...Array.from({ length: limit }, (_, k) => k)];
          const whole = drive(FENCED, [["s", stream]], [], [], start());
          const cut = drive(FENCED, [["s", stream]], cuts, [], start());
          const data = (d: ReturnType<typeof drive>) => d.toViewer.filter((p) => !isInjectedFence(p)).flatMap((p) => [...p]);
          expect(Buffer.from(data(cut)).equals(Buffer.from(stream))).toBe(true);
          expect(Buffer.from(data(whole)).equals(Buffer.from(stream))).toBe(true);
          const parse = (t: RfbTracker) => {
            const { out: _o, lf: _l, fences: _f, ack: _a, ackIn: _i, ...rest } = t.snapshot();
            return rest;
          };
          expect(parse(cut.tracker)).toEqual(parse(whole.tracker));
          expect(cut.tracker.framing).toBe("exact");
          expect(cut.tracker.inMessageBytes).toBe(0);
        }),
      { numRuns: Math.max(100, RUNS / 10) },
    );
  }, PROPERTY_TIMEOUT_MS);
});
