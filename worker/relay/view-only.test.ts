import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StreamFault } from "./stream-fault.ts";
import { ViewOnlyFilter } from "./view-only.ts";

const bytes = (...parts: (number[] | string | Uint8Array)[]) => {
  const arrays = parts.map((p) => (typeof p === "string" ? new TextEncoder().encode(p) : p instanceof Uint8Array ? p : Uint8Array.from(p)));
  return Uint8Array.from(arrays.flatMap((a) => [...a]));
};
const u16 = (n: number) => [n >> 8, n & 0xff];
const s32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n);
  return [...b];
};

// A viewer's stream: what must pass, and what must never reach the console.
const handshake38 = bytes("RFB 003.008\n", [1], [0]); // None, then ClientInit shared=0 (hostile)
const handshake38Out = bytes("RFB 003.008\n", [1], [1]);
const setPixelFormat = bytes([0, 0, 0, 0], [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
const setEncodings = bytes([2, 0], u16(3), s32(0), s32(-316), s32(-223));
const fbur = bytes([3, 0], u16(0), u16(0), u16(800), u16(600));
const fence = bytes([248, 0, 0, 0], [0, 0, 0, 1], [3], [9, 9, 9]);
const continuous = bytes([150, 1], u16(0), u16(0), u16(800), u16(600));
const passed = [setPixelFormat, setEncodings, fbur, fence, continuous];

const keyEvent = bytes([4, 1, 0, 0], [0, 0, 0xff, 0x0d]);
const pointer6 = bytes([5, 0x01], u16(10), u16(20));
const pointer7 = bytes([5, 0x81], u16(10), u16(20), [1]); // ExtendedMouseButtons: bit 7 set
const cutText = bytes([6, 0, 0, 0], s32(5), "hello");
const extendedCut = bytes([6, 0, 0, 0], s32(-6), [0, 0, 0, 1, 2, 3]);
const xvp = bytes([250, 0, 1, 2]); // reboot
const desktopSize = bytes([251, 0], u16(1024), u16(768), [1, 0], new Uint8Array(16));
const gii = bytes([253, 0], u16(4), [1, 2, 3, 4]);
const qemuKey = bytes([255, 0], u16(1), s32(0x61), s32(0x1e));
const qemuAudio = bytes([255, 1], u16(2), [1, 2], s32(44100));
const dropped = [keyEvent, pointer6, pointer7, cutText, extendedCut, xvp, desktopSize, gii, qemuKey, qemuAudio];

function run(filter: ViewOnlyFilter, input: Uint8Array, cuts: number[] = []): Uint8Array {
  const out: number[] = [];
  let at = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < input.length).sort((a, b) => a - b), input.length]) {
    out.push(...filter.push(input.subarray(at, cut)));
    at = cut;
  }
  return Uint8Array.from(out);
}

describe("view-only filter", () => {
  it("passes the handshake with shared forced to 1, passes display requests, drops all input", () => {
    const input = bytes(handshake38, setPixelFormat, setEncodings, keyEvent, fbur, pointer6, pointer7, cutText, fence,
      extendedCut, xvp, continuous, desktopSize, gii, qemuKey, qemuAudio, fbur);
    const out = run(new ViewOnlyFilter(), input);
    expect(out).toEqual(bytes(handshake38Out, setPixelFormat, setEncodings, fbur, fence, continuous, fbur));
  });

  it("gives the same result however the stream is split or packed", () => {
    const all = [...passed, ...dropped];
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: all.length - 1 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 4000 }), { maxLength: 40 }),
        (picks, cuts) => {
          const messages = [setEncodings, ...picks.map((i) => all[i]!)]; // announce -316 first
          const input = bytes(handshake38, ...messages);
          const expected = bytes(handshake38Out, ...messages.filter((m) => passed.includes(m)));
          expect(run(new ViewOnlyFilter(), input, cuts)).toEqual(expected);
        },
      ),
    );
  });

  it("drops a large clipboard text without buffering it", () => {
    const filter = new ViewOnlyFilter();
    run(filter, handshake38);
    const big = 10 * 1024 * 1024;
    expect(filter.push(bytes([6, 0, 0, 0], s32(big)))).toHaveLength(0);
    for (let sent = 0; sent < big; sent += 1 << 20) expect(filter.push(new Uint8Array(1 << 20))).toHaveLength(0);
    expect(filter.push(fbur)).toEqual(fbur);
  });

  it("handles VNC authentication and RFB 3.3, where the server picks the security type", () => {
    const auth = bytes("RFB 003.008\n", [2], new Uint8Array(16).fill(7), [0]);
    expect(run(new ViewOnlyFilter(), bytes(auth, keyEvent, fbur))).toEqual(bytes("RFB 003.008\n", [2], new Uint8Array(16).fill(7), [1], fbur));

    const v33 = new ViewOnlyFilter();
    expect(v33.push(bytes("RFB 003.003\n"))).toEqual(bytes("RFB 003.003\n"));
    // The client's ClientInit arrives before the filter has seen the server's choice: held back.
    expect(v33.push(bytes([0]))).toHaveLength(0);
    v33.observeServer(bytes("RFB 003.003\n", s32(1)));
    expect(v33.push(bytes(keyEvent, fbur))).toEqual(bytes([1], fbur));
  });

  it("closes on anything it cannot frame", () => {
    const f = new ViewOnlyFilter();
    run(f, handshake38);
    expect(() => f.push(bytes([7, 0, 0, 0]))).toThrow(StreamFault);
    expect(() => new ViewOnlyFilter().push(bytes("RFB 004.000\n"))).toThrow(/unsupported RFB version/);
    expect(() => new ViewOnlyFilter().push(bytes("RFB 003.008\n", [19]))).toThrow(/security type 19/);
    const q = new ViewOnlyFilter();
    run(q, handshake38);
    expect(() => q.push(bytes([255, 9, 0, 0]))).toThrow(/QEMU message 9/);
  });
});
