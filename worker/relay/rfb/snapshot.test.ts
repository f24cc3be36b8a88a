/** The snapshot: every field written and read back, the format before the split still read, bounded size, damaged ones refused. */
import { describe, expect, it } from "vitest";
import { StreamFault } from "../stream-fault.ts";
import { ascii, clientFence, FENCED, fill, PF32, serverCut, setEncodings, setup } from "./rfb-test-kit.ts";
import { readSnapshot, writeSnapshot } from "./snapshot.ts";
import type { TrackerState } from "./state.ts";
import { FENCE_SPACING_BYTES, MAX_HEADER, MAX_HELD, MAX_OUTSTANDING_FENCES, RfbTracker, type RfbTrackerState } from "./tracker.ts";

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

describe("snapshot mapping", () => {
  it("writes every field and reads it back (a state with no field at its initial value)", () => {
    // Typed as the working state: a field added there must be added here, and then to the mapping,
    // or the round trip below fails.
    const st: TrackerState = {
      client: { phase: "encoding", need: 4, header: [1, 2], body: 5, passBody: false, held: [3] },
      server: { phase: "tightLength", need: 2, header: [0x85], body: 7, passBody: true, held: [4, 5] },
      minorVersion: 8,
      securityType: 2,
      offeredTypes: [6, 0, 0, 0, 0, 0, 0, 0x80000000],
      offeredToRead: 3,
      handshakeDone: true,
      lost: true,
      serverUnframed: true,
      bytesPerPixel: 4,
      tightPixelBytes: 3,
      viewerWantsFences: true,
      viewerWantsExtMouse: true,
      serverExtMouse: true,
      encodingsLeft: 9,
      lastKeptEncoding: -312,
      encodingsRemoved: 2,
      listHasFence: true,
      listHasExtMouse: true,
      rectsLeft: 11,
      rectWidth: 12,
      rectHeight: 13,
      tileIndex: 14,
      tightDataBytes: 15,
      returned: 1016,
      received: 1000,
      lastFenceEnd: 990,
      proven: 500,
      provenReceived: 480,
      messageBoundary: 970,
      fences: [{ nonce: 0xfedcba98, returnedAt: 990, receivedAt: 973 }],
      heldForServer: [7, 8, 9],
      inputs: 21,
    };
    const json = JSON.parse(JSON.stringify(writeSnapshot(st))) as ReturnType<typeof writeSnapshot>;
    expect(readSnapshot(json)).toEqual(st);
    expect(writeSnapshot(readSnapshot(json))).toEqual(json);
  });

  it("reads the snapshots the tracker wrote before it was split (same keys and phase codes)", () => {
    // Written by the tracker before the split: offered types waiting for the viewer's choice, and
    // a fenced view-only stream inside a Tight compact length ("re", the rectangle's encoding, was
    // never read and is no longer written).
    const offered = JSON.parse(
      '{"v":1,"ver":8,"sec":-1,"done":false,"lost":false,"bpp":0,"tp":0,"cf":false,"cm":false,"sm":false,"el":0,"ek":null,"er":0,"ef":false,"eM":false,"rl":0,"rw":0,"rh":0,"re":0,"ti":0,"ts":0,"out":15,"inp":15,"lf":0,"ack":0,"ackIn":0,"mb":0,"ot":[6,0,0,0,0,0,0,0],"ol":0,"c":{"p":"choice","n":1,"b":"","r":0,"f":true,"h":""},"s":{"p":"wsec","n":0,"b":"","r":0,"f":true,"h":""},"hs":"","fences":[]}',
    ) as RfbTrackerState;
    const framing = JSON.parse(
      '{"v":1,"ver":8,"sec":2,"done":true,"lost":false,"bpp":4,"tp":3,"cf":true,"cm":true,"sm":false,"el":0,"ek":-316,"er":0,"ef":true,"eM":true,"rl":0,"rw":10,"rh":10,"re":7,"ti":0,"ts":0,"out":70106,"inp":70089,"lf":70088,"ack":0,"ackIn":0,"mb":70071,"in":1,"c":{"p":"msg","n":20,"b":"0000","r":0,"f":true,"h":""},"s":{"p":"clen","n":2,"b":"85","r":0,"f":true,"h":""},"hs":"","fences":[[1589533462,70088,70071]]}',
    ) as RfbTrackerState;
    for (const old of [offered, framing]) {
      const { re: _re, ...rest } = old;
      expect(new RfbTracker(FENCED, old).snapshot()).toEqual(rest);
    }
    // Both continue where they were.
    const choice = new RfbTracker(FENCED, offered);
    expect(() => choice.fromViewer(Uint8Array.from([3]))).toThrow(StreamFault); // 3 was not offered
    const view = new RfbTracker({ viewOnly: true, fenceCredit: true, watchInput: true }, framing);
    // The rest of the compact length (0x85 0x01: 133 bytes), the data, then a Bell: fenced after it.
    const parts = view.fromServer(Uint8Array.from([0x01, ...fill(133), 2]));
    expect(parts.map((p) => p.length)).toEqual([135, 17]);
    expect(view.inMessageBytes).toBe(0);
    // The viewer's SetPixelFormat completes, and our fence's answer is removed and credited.
    const fence = parts[1]!;
    const r = view.fromViewer(Uint8Array.from([0, 0, ...PF32, ...clientFence(0, [...fence.subarray(9)])]));
    expect([...r.toServer]).toEqual([0, 0, 0, 0, ...PF32]);
    expect(r.consumedInput).toBe(70089 + 135);
    expect(view.inputs).toBe(1);
  });
});
