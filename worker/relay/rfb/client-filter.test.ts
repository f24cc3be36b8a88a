/** The viewer's direction: the view-only filter and input watching, examples and properties. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StreamFault } from "../stream-fault.ts";
import { clientGen, cutsArb, PROPERTY_TIMEOUT_MS, resumeArb, RUNS, secArb, verArb, viewOnlyOps } from "./rfb-generators.ts";
import {
  ascii,
  clientFence,
  cutText,
  drive,
  enableCU,
  fbu,
  fbur,
  fill,
  FRAMEABLE,
  gii,
  handshake,
  isInjectedFence,
  keyEvent,
  PF16,
  PF32,
  pointer,
  pointerExt,
  qemuAudio,
  qemuKey,
  setDesktopSize,
  setEncodings,
  setPixelFormat,
  setup,
  u16,
  u32,
  VIEW,
  xvp,
  type Bytes,
} from "./rfb-test-kit.ts";
import { RfbTracker, type Mode, type RfbTrackerState } from "./tracker.ts";

describe("view-only filter", () => {
  it("passes display requests, drops all input, closes on what it cannot frame", () => {
    const { tracker: t, clientOut } = setup(VIEW, 8, 1);
    expect(clientOut.at(-1)).toBe(1);
    const pass = [setPixelFormat(PF32), setEncodings([0, 1, -223]), fbur(), enableCU(), clientFence(0x80000001, [1, 2])];
    const drop = [keyEvent(), pointer(1), cutText(5), cutText(6, true), xvp(), setDesktopSize(2), gii(4, true), gii(3, false), qemuKey(), qemuAudio(0), qemuAudio(2)];
    const input = [...pass, ...drop].flatMap((m, k) => [m, drop[k % drop.length]!]);
    const r = t.fromViewer(Uint8Array.from(input.flat()));
    const expected = [...pass, ...drop].flatMap((m) => (pass.includes(m) ? [m] : [])).flat();
    expect([...r.toServer]).toEqual(expected);
    expect(() => t.fromViewer(Uint8Array.from([7, 0, 0, 0]))).toThrow(/type 7/);
    const q = setup(VIEW, 8, 1).tracker;
    expect(() => q.fromViewer(Uint8Array.from([255, 9, 0, 0]))).toThrow(/QEMU message 9/);
  });

  it("drops a standard PointerEvent with bit 7 set before the server confirmed extended buttons (issue 9 item 10)", () => {
    // The old filter read 7 bytes as soon as the viewer asked for -316, swallowed the next message's
    // first byte and closed the console.
    const { tracker: t } = setup(VIEW, 8, 1);
    t.fromViewer(Uint8Array.from(setEncodings([0, -316])));
    expect([...t.fromViewer(Uint8Array.from([...pointer(0x80), ...fbur()])).toServer]).toEqual(fbur());
    // The server confirms with an empty -316 rectangle: from now on bit 7 marks the 7-byte form.
    t.fromServer(Uint8Array.from(fbu([{ enc: -316, w: 0, h: 0, body: [] }])));
    expect([...t.fromViewer(Uint8Array.from([...pointerExt(1, 1), ...fbur()])).toServer]).toEqual(fbur());
    expect([...t.fromViewer(Uint8Array.from([...pointer(0x01), ...fbur()])).toServer]).toEqual(fbur());
    // A SetEncodings without -316 ends the extended form.
    t.fromViewer(Uint8Array.from(setEncodings([0])));
    expect([...t.fromViewer(Uint8Array.from([...pointer(0x80), ...fbur()])).toServer]).toEqual(fbur());
  });

  it("uses a SetPixelFormat sent before ServerInit arrived, not the server's format", () => {
    const t = new RfbTracker({ viewOnly: true, fenceCredit: true });
    t.fromServer(Uint8Array.from([...ascii("RFB 003.008\n"), 1, 1]));
    t.fromViewer(Uint8Array.from([...ascii("RFB 003.008\n"), 1, 1, ...setPixelFormat(PF16), ...setEncodings([0, -312])]));
    const update = Uint8Array.from(fbu([{ enc: 0, w: 3, h: 3, body: fill(3 * 3 * 2) }]));
    const out = t.fromServer(Uint8Array.from([...u32(0), ...u16(8), ...u16(8), ...PF32, ...u32(0), ...update]));
    expect(t.framing).toBe("exact");
    expect(isInjectedFence(out.at(-1)!)).toBe(true); // the update ended where a 2-byte-pixel update ends
  });

  it("streams a large clipboard text through without holding it", () => {
    const { tracker: t } = setup(VIEW, 8, 1);
    const big = 10 * 1024 * 1024;
    expect(t.fromViewer(Uint8Array.from([6, 0, 0, 0, ...u32(big)])).toServer).toHaveLength(0);
    for (let sent = 0; sent < big; sent += 1 << 20) {
      expect(t.fromViewer(new Uint8Array(1 << 20)).toServer).toHaveLength(0);
      expect(JSON.stringify(t.snapshot()).length).toBeLessThan(1024);
    }
    expect([...t.fromViewer(Uint8Array.from(fbur())).toServer]).toEqual(fbur());
  });

  it("rewrites SetEncodings to what the console direction can frame, keeping order and length", () => {
    const { tracker: t } = setup(VIEW, 8, 1);
    const encs = [21, 50, 7, 8, 16, -260, 0, -312, 99, -316, -32, -247, 0x574d5665];
    const r = t.fromViewer(Uint8Array.from(setEncodings(encs)));
    expect([...r.toServer]).toEqual(setEncodings([50, 50, 7, 7, 16, -260, 0, -312, -312, -316, -32, -247, -247]));
    expect([...t.fromViewer(Uint8Array.from(setEncodings([21, 99]))).toServer]).toEqual(setEncodings([0, 0]));
    expect([...t.fromViewer(Uint8Array.from(setEncodings([]))).toServer]).toEqual(setEncodings([]));
  });
});

describe("input watching (the edge's idle timeout)", () => {
  it("counts the viewer's input messages and passes every byte untouched, encodings included", () => {
    const WATCH: Mode = { viewOnly: false, fenceCredit: false, watchInput: true };
    const { tracker: t } = setup(WATCH, 8, 1);
    const messages = [setEncodings([21, 7, -312]), fbur(), keyEvent(), pointer(1), cutText(5), qemuKey(), fbur()];
    const r = t.fromViewer(Uint8Array.from(messages.flat()));
    expect([...r.toServer]).toEqual(messages.flat()); // nothing rewritten: the console is not framed
    expect(t.inputs).toBe(4);
    expect(t.inputWatched).toBe(true);
    // The count survives a snapshot.
    const resumed = new RfbTracker(WATCH, JSON.parse(JSON.stringify(t.snapshot())) as RfbTrackerState);
    resumed.fromViewer(Uint8Array.from(keyEvent()));
    expect(resumed.inputs).toBe(5);
  });

  it("without watching, a full-control viewer's messages are not parsed at all", () => {
    const { tracker: t } = setup({ viewOnly: false, fenceCredit: false }, 8, 1);
    t.fromViewer(Uint8Array.from(keyEvent()));
    expect(t.inputs).toBe(0);
    expect(t.inputWatched).toBe(false);
  });
});

describe("properties", () => {
  it(`view-only: exactly the display requests come out, however split, resumed at any byte (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(verArb, secArb, fc.boolean(), fc.nat(1), fc.array(clientGen, { maxLength: 25 }), cutsArb, resumeArb,
        (ver, sec, pipeline, shared, gens, cuts, resumeAt) => {
          const hs = handshake(ver, sec, shared, PF32, pipeline && ver === 3 && sec === 1);
          const { ops, out } = viewOnlyOps(gens);
          const d = drive(VIEW, [...hs.steps, ...ops], cuts, resumeAt);
          expect(d.toServer).toEqual([...hs.clientOut, ...out]);
          expect(d.tracker.handshakeDone).toBe(true);
          expect(d.maxSnapshot).toBeLessThan(1024);
        }),
      { numRuns: RUNS },
    );
  }, PROPERTY_TIMEOUT_MS);

  it(`view-only: arbitrary viewer bytes after the handshake yield only allowed messages or a StreamFault (${RUNS} cases)`, () => {
    // Mostly well-formed messages of every kind, with arbitrary bytes mixed in now and then.
    const item = fc.oneof(
      { weight: 6, arbitrary: clientGen.map((g) => viewOnlyOps([{ ...g, kind: g.kind % 13 }]).ops.flatMap((o) => o[1])) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }).map((b) => [...b]) },
    );
    let clean = 0;
    fc.assert(
      fc.property(verArb, secArb, fc.array(item, { maxLength: 16 }), cutsArb, resumeArb, (ver, sec, items, cuts, resumeAt) => {
        const hs = handshake(ver, sec, 0);
        let d;
        try {
          d = drive(VIEW, [...hs.steps, ["c", items.flat()]], cuts, resumeAt);
        } catch (e) {
          expect(e).toBeInstanceOf(StreamFault);
          return;
        }
        clean++;
        expect(d.toServer.slice(0, hs.clientOut.length)).toEqual(hs.clientOut);
        expectOnlyAllowed(d.toServer.slice(hs.clientOut.length));
      }),
      { numRuns: RUNS },
    );
    expect(clean).toBeGreaterThan(RUNS / 4); // the property is not carried by faults alone
  }, PROPERTY_TIMEOUT_MS);
});

/** An independent parser of what a view-only tracker may emit: display requests only. */
function expectOnlyAllowed(out: Bytes): void {
  let i = 0;
  while (i < out.length) {
    const t = out[i]!;
    let len: number;
    if (t === 0) len = 20;
    else if (t === 3 || t === 150) len = 10;
    else if (t === 2) {
      const n = (out[i + 2]! << 8) | out[i + 3]!;
      len = 4 + 4 * n;
      for (let k = 0; k < n && i + 8 + 4 * k <= out.length; k++) {
        const e = ((out[i + 4 + 4 * k]! << 24) | (out[i + 5 + 4 * k]! << 16) | (out[i + 6 + 4 * k]! << 8) | out[i + 7 + 4 * k]!) | 0;
        expect(FRAMEABLE.includes(e) || (e >= -32 && e <= -23) || (e >= -256 && e <= -247) || (e >= -512 && e <= -412) || (e >= -768 && e <= -763)).toBe(true);
      }
    } else if (t === 248) len = 9 + out[i + 8]!;
    else throw new Error(`type ${t} came out of a view-only tracker`);
    i += len; // the last one may be incomplete: the rest of it is still to come

  }
}
