import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CloseCode, clampReason } from "./close-codes.ts";
import {
  concatBytes,
  decodeMessage,
  encodeClose,
  encodeCredit,
  encodeData,
  encodeJson,
  encodeOpenAck,
  encodeOpenOk,
  type Frame,
  FrameType,
  ProtocolError,
} from "./frames.ts";
import { FRAME_HEADER_BYTES, MAX_DATA_BYTES_ACCEPTED } from "./limits.ts";

const streamId = fc.integer({ min: 1, max: 0xffffffff });

/** Random frames of every type, paired with what decoding must give back. */
const frameArb: fc.Arbitrary<{ bytes: Uint8Array; frame: Frame }> = fc.oneof(
  fc.record({ s: streamId, b: fc.uint8Array({ maxLength: 2000 }) }).map(({ s, b }) => ({
    bytes: encodeData(s, b),
    frame: { type: FrameType.data, stream: s, bytes: b },
  })),
  fc.record({ s: streamId, n: fc.integer({ min: 0, max: 0xffffffff }) }).map(({ s, n }) => ({
    bytes: encodeCredit(s, n),
    frame: { type: FrameType.credit, stream: s, bytes: n },
  })),
  streamId.map((s) => ({ bytes: encodeOpenOk(s), frame: { type: FrameType.openOk, stream: s } })),
  streamId.map((s) => ({ bytes: encodeOpenAck(s), frame: { type: FrameType.openAck, stream: s } })),
  fc.record({ s: streamId, c: fc.integer({ min: 4000, max: 4999 }), r: fc.string({ maxLength: 100 }) }).map(({ s, c, r }) => ({
    bytes: encodeClose(FrameType.close, s, c, r),
    frame: { type: FrameType.close, stream: s, code: c, reason: clampReason(r) },
  })),
  fc.record({ s: streamId, hv: fc.string({ maxLength: 20 }), vm: fc.string({ maxLength: 40 }) }).map(({ s, hv, vm }) => ({
    bytes: encodeJson(FrameType.open, s, { hypervisor: hv, vm }),
    frame: { type: FrameType.open, stream: s, json: { hypervisor: hv, vm } },
  })),
);

function normalise(frames: Frame[]): unknown[] {
  return frames.map((f) => ("bytes" in f && f.bytes instanceof Uint8Array ? { ...f, bytes: [...f.bytes] } : f));
}

describe("frame codec", () => {
  it("round-trips every frame type through one message", () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 20 }), (items) => {
        const decoded = decodeMessage(concatBytes(items.map((i) => i.bytes)));
        expect(normalise(decoded)).toEqual(normalise(items.map((i) => i.frame)));
      }),
    );
  });

  it("splits and merges at random boundaries: whole frames decode the same however batched, partial ones never", () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 0, max: 1 << 16 }),
        (items, rawCut) => {
          const all = concatBytes(items.map((i) => i.bytes));
          const cut = 1 + (rawCut % all.length);
          const boundaries = new Set<number>();
          let at = 0;
          for (const i of items) boundaries.add((at += i.bytes.length));
          const first = all.subarray(0, cut);
          if (!boundaries.has(cut)) {
            // A message that ends inside a frame is refused: a frame never spans two messages.
            expect(() => decodeMessage(first)).toThrow(ProtocolError);
            return;
          }
          // Cut on a frame boundary: the two messages together carry exactly the same frames.
          const rest = all.subarray(cut);
          const frames = [...decodeMessage(first), ...(rest.length ? decodeMessage(rest) : [])];
          expect(normalise(frames)).toEqual(normalise(items.map((i) => i.frame)));
        },
      ),
    );
  });

  it("rejects messages that end inside a frame, at every cut point", () => {
    const message = concatBytes([encodeData(7, new Uint8Array(50)), encodeCredit(7, 9)]);
    const firstEnd = FRAME_HEADER_BYTES + 50;
    for (let cut = 1; cut < message.length; cut++) {
      if (cut === firstEnd) continue; // a whole first frame is a valid message
      expect(() => decodeMessage(message.subarray(0, cut)), `cut at ${cut}`).toThrow(ProtocolError);
    }
  });

  it("rejects unknown types, oversized payloads, empty messages and bad payloads before reading them", () => {
    const header = (type: number, stream: number, length: number) => {
      const h = new Uint8Array(FRAME_HEADER_BYTES);
      const v = new DataView(h.buffer);
      v.setUint8(0, type);
      v.setUint32(1, stream);
      v.setUint32(5, length);
      return h;
    };
    expect(() => decodeMessage(header(0x42, 1, 0))).toThrow(/unknown frame type/);
    // Claims a 4 GiB payload: refused from the header alone.
    expect(() => decodeMessage(header(FrameType.data, 1, 0xffffffff))).toThrow(/exceeds/);
    expect(() => decodeMessage(header(FrameType.data, 1, MAX_DATA_BYTES_ACCEPTED + 1))).toThrow(/exceeds/);
    expect(() => decodeMessage(new Uint8Array(0))).toThrow(/empty/);
    expect(() => decodeMessage(concatBytes([header(FrameType.credit, 1, 3), new Uint8Array(3)]))).toThrow(/4 bytes/);
    expect(() => decodeMessage(concatBytes([header(FrameType.hello, 0, 3), new TextEncoder().encode("{x:")]))).toThrow(/JSON/);
    expect(() => decodeMessage(concatBytes([header(FrameType.close, 1, 3), new Uint8Array([0x0f, 0xa0, 0xff])]))).toThrow(/UTF-8/);
    expect(() => decodeMessage(encodeJson(FrameType.open, 0, {}))).toThrow(/on stream 0/);
    expect(() => decodeMessage(concatBytes([header(FrameType.hello, 5, 2), new TextEncoder().encode("{}")]))).toThrow(/stream 5/);
  });

  it("refuses to encode a DATA frame over the cap", () => {
    expect(() => encodeData(1, new Uint8Array(MAX_DATA_BYTES_ACCEPTED + 1))).toThrow(RangeError);
  });

  it("cuts close reasons to a WebSocket close frame's 123 bytes without splitting characters", () => {
    const long = "é".repeat(100);
    const clamped = clampReason(long);
    expect(new TextEncoder().encode(clamped).length).toBeLessThanOrEqual(123);
    expect(clamped.endsWith("...")).toBe(true);
    const frame = decodeMessage(encodeClose(FrameType.close, 3, CloseCode.upstreamFailed, long))[0]!;
    expect(frame).toMatchObject({ type: FrameType.close, stream: 3, code: 4502, reason: clamped });
  });
});

describe("decoding hostile bytes", () => {
  // PORTHOLE_FUZZ_RUNS=1000000 for a long run (about a minute per million here).
  const runs = Number(process.env.PORTHOLE_FUZZ_RUNS) || 10_000;

  /** Mostly valid headers with random payloads, so the fuzzer gets past the first check. */
  const plausible = fc
    .array(
      fc.record({
        type: fc.constantFrom(0x01, 0x02, 0x03, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x20, 0x21, 0x00, 0x16, 0xff),
        stream: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0xffffffff })),
        payload: fc.uint8Array({ maxLength: 64 }),
        lie: fc.integer({ min: -3, max: 3 }),
      }),
      { maxLength: 8 },
    )
    .map((parts) =>
      concatBytes(
        parts.map(({ type, stream, payload, lie }) => {
          const out = new Uint8Array(9 + payload.length);
          const view = new DataView(out.buffer);
          view.setUint8(0, type);
          view.setUint32(1, stream);
          view.setUint32(5, Math.max(0, payload.length + lie));
          out.set(payload, 9);
          return out;
        }),
      ),
    );

  /** Sequences of well-formed binary frames, whose sizes the decoder must account for exactly. */
  const wellFormed = fc
    .array(
      fc.oneof(
        fc.record({ stream: fc.integer({ min: 1, max: 0xffffffff }), bytes: fc.uint8Array({ maxLength: 64 }) }).map(({ stream, bytes }) => encodeData(stream, bytes)),
        fc.record({ stream: fc.integer({ min: 1, max: 0xffffffff }), n: fc.integer({ min: 1, max: 0x7fffffff }) }).map(({ stream, n }) => encodeCredit(stream, n)),
        fc.integer({ min: 1, max: 0xffffffff }).map((stream) => encodeOpenOk(stream)),
        fc.integer({ min: 1, max: 0xffffffff }).map((stream) => encodeOpenAck(stream)),
      ),
      { minLength: 1, maxLength: 8 },
    )
    .map(concatBytes);

  it("gives frames or a ProtocolError for any bytes, nothing else", () => {
    // How often each outcome happened: a property whose only assertion never ran would pass
    // silently, so the test also proves that the generator reaches the accounting check.
    let accounted = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), plausible, wellFormed), (bytes) => {
        try {
          const frames = decodeMessage(bytes);
          // Whole frames only: their headers and payloads account for every byte of the message.
          if (frames.every((f) => f.type === FrameType.data || f.type === FrameType.credit || f.type === FrameType.openOk || f.type === FrameType.openAck)) {
            const size = frames.reduce((n, f) => n + 9 + payloadSize(f), 0);
            expect(size).toBe(bytes.length);
            accounted++;
          }
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
          refused++;
        }
      }),
      { numRuns: runs },
    );
    expect(accounted).toBeGreaterThan(runs / 100);
    expect(refused).toBeGreaterThan(runs / 100);
  });
});

function payloadSize(f: Frame): number {
  if (f.type === FrameType.data) return f.bytes.length;
  if (f.type === FrameType.credit) return 4;
  return 0;
}
