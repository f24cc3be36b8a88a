/** The snapshot: bounded size, damaged ones refused. */
import { describe, expect, it } from "vitest";
import { StreamFault } from "../stream-fault.ts";
import { ascii, FENCED, fill, PF32, serverCut, setEncodings, setup } from "./rfb-test-kit.ts";
import { FENCE_SPACING_BYTES, MAX_HEADER, MAX_HELD, MAX_OUTSTANDING_FENCES, RfbTracker } from "./tracker.ts";

describe("state", () => {
  it("stays under 1 KiB in the worst case", () => {
    // The server's list of security types, all 255, read and waiting for the viewer's choice.
    const offer = new RfbTracker(FENCED);
    offer.fromServer(Uint8Array.from(ascii("RFB 003.008\n")));
    offer.fromViewer(Uint8Array.from(ascii("RFB 003.008\n")));
    offer.fromServer(Uint8Array.from([255, ...Array.from({ length: 255 }, (_, k) => k + 1)]));
    expect(offer.snapshot().ot).toEqual(new Array<number>(8).fill(0xffffffff).map((w, k) => (k === 0 ? 0xfffffffe : w)));
    expect(JSON.stringify(offer.snapshot()).length).toBeLessThan(1024);
    // Most viewer bytes held in the handshake.
    const t = new RfbTracker(FENCED);
    t.fromServer(Uint8Array.from(ascii("RFB 003.008\n")));
    t.fromViewer(Uint8Array.from([...ascii("RFB 003.003\n"), ...fill(MAX_HELD, 0xff)]));
    expect(JSON.stringify(t.snapshot()).length).toBeLessThan(1024);
    // One more byte: not view-only, so framing is lost and everything held goes on untouched.
    expect([...t.fromViewer(Uint8Array.from([0])).toServer]).toEqual([...fill(MAX_HELD, 0xff), 0]);
    expect(t.framing).toBe("lost");

    // Every fence slot used, headers half received in both directions, counters at their largest.
    const { tracker: f } = setup(FENCED, 8, 1);
    f.fromViewer(Uint8Array.from(setEncodings([0, -312])));
    for (let k = 0; k < 3 * MAX_OUTSTANDING_FENCES; k++) f.fromServer(Uint8Array.from(serverCut(FENCE_SPACING_BYTES)));
    f.fromServer(Uint8Array.from([0, 0, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
    f.fromViewer(Uint8Array.from([0, 0, 0, 0, ...PF32.slice(0, 15)]));
    const state = f.snapshot();
    expect(state.fences).toHaveLength(MAX_OUTSTANDING_FENCES);
    const huge = Number.MAX_SAFE_INTEGER;
    Object.assign(state, { out: huge, inp: huge, lf: huge, ack: huge, ackIn: huge, mb: huge, rl: 65535, rw: 65535, rh: 65535, re: -2147483648, ti: 65535 * 65535, ts: huge });
    state.fences = state.fences.map((): [number, number, number] => [0xffffffff, huge, huge]);
    state.s.r = huge;
    state.c.r = huge;
    state.s.b = "ff".repeat(MAX_HEADER);
    state.c.b = "ff".repeat(MAX_HEADER);
    expect(JSON.stringify(state).length).toBeLessThan(1024);
    expect(() => new RfbTracker(FENCED, JSON.parse(JSON.stringify(state)))).not.toThrow();
    // A damaged snapshot is refused with a clear fault, not half-used.
    expect(() => new RfbTracker(FENCED, { ...state, s: { ...state.s, b: "zz" } })).toThrow(StreamFault);
    expect(() => new RfbTracker(FENCED, { ...state, c: { ...state.c, h: "00".repeat(MAX_HELD + 1) } })).toThrow(StreamFault);
    expect(f.dirty).toBe(true);
    f.clearDirty();
    expect(f.dirty).toBe(false);
    f.fromServer(Uint8Array.from([12]));
    expect(f.dirty).toBe(true);
  });
});
