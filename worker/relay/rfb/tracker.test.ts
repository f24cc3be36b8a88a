/**
 * RfbTracker: examples for each behaviour, and properties over generated streams.
 *
 * The properties run RFB_FUZZ_RUNS cases each (default 10,000: about 4 s for the file on a quiet
 * machine). A longer run (1,000,000 cases: about 6 minutes):
 *   RFB_FUZZ_RUNS=1000000 npx vitest run --config vitest.config.ts --project unit worker/relay/rfb/tracker.test.ts --testTimeout=0
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StreamFault } from "../stream-fault.ts";
import {
  ascii,
  bell,
  clientFence,
  colourMap,
  compact,
  cutText,
  drive,
  enableCU,
  endCU,
  fbu,
  fbur,
  fill,
  flat,
  gii,
  handshake,
  keyEvent,
  PF16,
  PF32,
  pointer,
  pointerExt,
  qemuAudio,
  qemuAudioServer,
  qemuKey,
  serverCut,
  serverFence,
  setDesktopSize,
  setEncodings,
  setPixelFormat,
  u16,
  u32,
  xvp,
  xvpServer,
  type Bytes,
  type Op,
  type Rect,
  type Security,
  type Version,
} from "./rfb-test-kit.ts";
import { FENCE_SPACING_BYTES, FENCE_TAG, MAX_HEADER, MAX_HELD, MAX_OUTSTANDING_FENCES, RfbTracker, type Mode, type RfbTrackerState } from "./tracker.ts";

const RUNS = Number(process.env.RFB_FUZZ_RUNS ?? 10_000);
/** Each property takes 0.5 to 4 s at 10,000 cases on a quiet machine; this one is shared. */
const PROPERTY_TIMEOUT_MS = Math.max(60_000, RUNS * 10);
const VIEW: Mode = { viewOnly: true, fenceCredit: false };
const FENCED: Mode = { viewOnly: false, fenceCredit: true };

/** Encodings the tracker can frame (the test's own list, from the spec). */
const FRAMEABLE = [0, 1, 2, 5, 6, 7, 16, 50, -260, -223, -224, -239, -240, -257, -258, -259, -261, -307, -308, -309, -312, -313, -316, 0x574d5664, 0xc0a1e5ce | 0];
const TUNING = [-32, -23, -256, -247, -512, -412, -768, -763];
const UNFRAMEABLE = [4, 8, 15, 17, 21, -305, -317, 0x574d5665, 1000, -1];

/** What the tracker must make of a SetEncodings: removed ones become copies of a neighbour kept one. */
function rewritten(encs: number[]): number[] {
  const keep = (e: number) => FRAMEABLE.includes(e) || TUNING.includes(e);
  const firstKept = encs.find(keep) ?? 0;
  let last: number | null = null;
  return encs.map((e) => {
    if (keep(e)) return (last = e);
    return last ?? firstKept;
  });
}

function isInjectedFence(p: Uint8Array): boolean {
  return p.length === 17 && p[0] === 248 && p[8] === 8 && FENCE_TAG.every((v, k) => p[9 + k] === v);
}

function setup(mode: Mode, ver: Version, sec: Security, pipeline = false): { tracker: RfbTracker; clientOut: Bytes } {
  const hs = handshake(ver, sec, 0, PF32, pipeline);
  const d = drive(mode, hs.steps);
  return { tracker: d.tracker, clientOut: d.toServer };
}

describe("handshake", () => {
  it("forces shared on for view-only, for every version and security type", () => {
    for (const ver of [3, 7, 8] as const)
      for (const sec of [1, 2] as const) {
        const hs = handshake(ver, sec, 0);
        const d = drive(VIEW, hs.steps);
        expect(d.toServer).toEqual(hs.clientOut);
        expect(d.tracker.handshakeDone).toBe(true);
        expect(flat(d.toViewer)).toEqual(hs.steps.filter((s) => s[0] === "s").flatMap((s) => s[1]));
      }
  });

  it("releases an RFB 3.3 ClientInit pipelined before the server's security type (issue 9 item 10)", () => {
    // The old filter held the ClientInit with no way to release it: the viewer waited for
    // ServerInit and the server for ClientInit, forever.
    for (const mode of [VIEW, FENCED, { viewOnly: false, fenceCredit: false }]) {
      const t = new RfbTracker(mode);
      t.fromServer(Uint8Array.from(ascii("RFB 003.008\n")));
      const r = t.fromViewer(Uint8Array.from([...ascii("RFB 003.003\n"), 0]));
      expect([...r.toServer]).toEqual(ascii("RFB 003.003\n"));
      expect(t.takeHeldForServer()).toBeNull();
      t.fromServer(Uint8Array.from([0, 0]));
      expect(t.takeHeldForServer()).toBeNull();
      t.fromServer(Uint8Array.from([0, 1])); // security type None completes
      expect([...(t.takeHeldForServer() ?? [])]).toEqual([mode.viewOnly ? 1 : 0]);
      expect(t.takeHeldForServer()).toBeNull();
      t.fromServer(Uint8Array.from([...u16(8), ...u16(8), ...PF32, ...u32(0)]));
      expect(t.handshakeDone).toBe(true);
    }
  });

  it("reports handshake failures and passes the reason through", () => {
    const t = new RfbTracker(VIEW);
    t.fromServer(Uint8Array.from(ascii("RFB 003.008\n")));
    t.fromViewer(Uint8Array.from(ascii("RFB 003.008\n")));
    const reason = [...u32(6), ...ascii("banned")];
    expect(flat(t.fromServer(Uint8Array.from([0, ...reason])))).toEqual([0, ...reason]);
    expect(t.fromViewer(Uint8Array.from([1, 0])).toServer).toHaveLength(0);
    expect(t.handshakeDone).toBe(false);

    const v33 = new RfbTracker(VIEW);
    v33.fromServer(Uint8Array.from(ascii("RFB 003.003\n")));
    v33.fromViewer(Uint8Array.from([...ascii("RFB 003.003\n"), 0]));
    v33.fromServer(Uint8Array.from([...u32(0), ...reason]));
    expect(v33.takeHeldForServer()).toBeNull(); // the refused viewer's ClientInit goes nowhere
  });

  it("closes a view-only console on a security type it cannot inspect, and passes it through otherwise", () => {
    const t = new RfbTracker(VIEW);
    t.fromServer(Uint8Array.from([...ascii("RFB 003.008\n"), 2, 19, 2]));
    t.fromViewer(Uint8Array.from(ascii("RFB 003.008\n")));
    expect(() => t.fromViewer(Uint8Array.from([19]))).toThrow(/security type 19/);

    const open = new RfbTracker(FENCED);
    open.fromServer(Uint8Array.from([...ascii("RFB 003.008\n"), 2, 19, 2]));
    open.fromViewer(Uint8Array.from(ascii("RFB 003.008\n")));
    const tls = Uint8Array.from([19, 0x16, 3, 1, 9, 9, 9]);
    expect(open.fromViewer(tls).toServer).toEqual(tls);
    expect(open.framing).toBe("lost");
    const fromServer = Uint8Array.from([0, 2, 0, 0, 0, 0, 9]);
    expect(open.fromServer(fromServer)).toEqual([fromServer]);

    expect(() => new RfbTracker(VIEW).fromViewer(Uint8Array.from(ascii("RFB 004.000\n")))).toThrow(StreamFault);
  });
});

describe("security type choice (issue 23 item 4)", () => {
  const MODES: Mode[] = [VIEW, FENCED, { viewOnly: false, fenceCredit: false }, { viewOnly: false, fenceCredit: false, watchInput: true }];

  it("closes every viewer that chooses a type the server did not offer; what follows never reaches the server", () => {
    // A lenient server offered None only; the viewer picks VNC auth and sends its "auth response":
    // a ClientInit with shared = 0 and a KeyEvent, which such a server took as messages.
    for (const mode of MODES) {
      const t = new RfbTracker(mode);
      t.fromServer(Uint8Array.from([...ascii("RFB 003.008\n"), 1, 1]));
      expect([...t.fromViewer(Uint8Array.from(ascii("RFB 003.008\n"))).toServer]).toEqual(ascii("RFB 003.008\n"));
      let fault: unknown;
      try {
        t.fromViewer(Uint8Array.from([2, 0, ...keyEvent(), ...fill(7)]));
      } catch (e) {
        fault = e;
      }
      expect(fault).toBeInstanceOf(StreamFault);
      expect((fault as StreamFault).code).toBe(4400);
      expect((fault as StreamFault).message).toMatch(/security type 2, which the VNC server did not offer/);
    }
  });

  it("closes a viewer that chooses before the server's list is complete", () => {
    for (const mode of MODES) {
      const t = new RfbTracker(mode);
      t.fromServer(Uint8Array.from([...ascii("RFB 003.008\n"), 2, 1])); // the second type not yet here
      expect(() => t.fromViewer(Uint8Array.from([...ascii("RFB 003.008\n"), 1]))).toThrow(/before the VNC server offered any/);
      const none = new RfbTracker(mode);
      none.fromServer(Uint8Array.from(ascii("RFB 003.008\n")));
      expect(() => none.fromViewer(Uint8Array.from([...ascii("RFB 003.007\n"), 2]))).toThrow(/before the VNC server offered any/);
    }
  });

  it(`a choice passes if and only if it was offered, however split and resumed (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...MODES),
        fc.constantFrom<7 | 8>(7, 8),
        fc.uniqueArray(fc.integer({ min: 1, max: 255 }), { minLength: 1, maxLength: 255, size: "max" }),
        fc.nat(255),
        cutsArb,
        resumeArb,
        (mode, ver, offered, choice, cuts, resumeAt) => {
          const version = ascii(`RFB 003.00${ver}\n`);
          const ops: Op[] = [["s", ascii("RFB 003.008\n")], ["c", version], ["s", [offered.length, ...offered]], ["c", [choice]]];
          let d: ReturnType<typeof drive> | undefined;
          let fault: unknown;
          try {
            d = drive(mode, ops, cuts, resumeAt);
          } catch (e) {
            fault = e;
          }
          if (!offered.includes(choice)) {
            expect(fault).toBeInstanceOf(StreamFault);
            expect((fault as StreamFault).message).toMatch(/did not offer/);
          } else if (choice === 1 || choice === 2 || !mode.viewOnly) {
            expect(fault).toBeUndefined();
            expect(d!.toServer.slice(0, 13)).toEqual([...version, choice]);
          } else expect((fault as StreamFault).message).toMatch(/cannot be inspected/);
        },
      ),
      { numRuns: RUNS },
    );
  }, PROPERTY_TIMEOUT_MS);
});

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

describe("fence credit", () => {
  it("fences the end of what the console sent, removes our answers, passes the server's own fences", () => {
    const { tracker: t } = setup(FENCED, 8, 1);
    // No fences before the viewer announced the Fence pseudo-encoding.
    const update = Uint8Array.from(fbu([{ enc: 0, w: 2, h: 2, body: fill(16) }]));
    expect(t.fromServer(update)).toEqual([update]);
    expect(t.fenceCreditActive).toBe(false);
    t.fromViewer(Uint8Array.from(setEncodings([7, 0, -312, -313])));
    expect(t.fenceCreditActive).toBe(true);
    // An update split in two: the fence comes after its end only.
    expect(t.fromServer(update.subarray(0, 10))).toEqual([update.subarray(0, 10)]);
    const out = t.fromServer(update.subarray(10));
    expect(out).toHaveLength(2);
    expect(out[0]).toEqual(update.subarray(10));
    const fence = out[1]!;
    expect(isInjectedFence(fence)).toBe(true);
    expect(new DataView(fence.buffer).getUint32(4) >>> 0).toBe(0x80000000); // Request only: noVNC answers
    // noVNC's answer: flags & (BlockBefore | BlockAfter) = 0, the payload echoed.
    const before = t.unconfirmed - 17; // everything fromServer returned before the fence (handshake included)
    const answer = clientFence(0, [...fence.subarray(9)]);
    const own = clientFence(0x80000000 | 3, [1]); // the viewer's own request
    const r = t.fromViewer(Uint8Array.from([...fbur(), ...answer, ...own]));
    expect([...r.toServer]).toEqual([...fbur(), ...own]);
    expect(r.consumed).toBe(before + 17);
    expect(r.consumedInput).toBe(before);
    expect(t.unconfirmed).toBe(0);
    // The server's fence request goes to the viewer untouched, and its answer to the server.
    const serverReq = Uint8Array.from(serverFence(0x80000000 | 1, [0]));
    const out2 = t.fromServer(serverReq);
    expect(out2[0]).toEqual(serverReq);
    const answerToServer = Uint8Array.from(clientFence(1, [0]));
    expect(t.fromViewer(answerToServer).toServer).toEqual(answerToServer);
    // A forged answer with our tag but an unknown nonce: dropped, no credit.
    const forged = t.fromViewer(Uint8Array.from(clientFence(0, [...FENCE_TAG, 1, 2, 3, 4])));
    expect(forged.toServer).toHaveLength(0);
    expect(forged.consumed).toBe(0);
  });

  it("fences the end of an update even when the next message has only begun", () => {
    const { tracker: t } = setup(FENCED, 8, 1);
    t.fromViewer(Uint8Array.from(setEncodings([0, -312])));
    const update = fbu([{ enc: 1, w: 10, h: 10, body: fill(4) }]);
    const cut = serverCut(100_000);
    const out = t.fromServer(Uint8Array.from([...update, ...cut.slice(0, 500)]));
    expect(out.map((p) => (isInjectedFence(p) ? "fence" : p.length))).toEqual([update.length, "fence", 500]);
    expect(t.inMessageBytes).toBe(500);
    // Nothing more to fence until the clipboard text ends.
    expect(t.fromServer(Uint8Array.from(cut.slice(500, 50_000))).some(isInjectedFence)).toBe(false);
    expect(t.inMessageBytes).toBe(50_000);
    const end = t.fromServer(Uint8Array.from(cut.slice(50_000)));
    expect(isInjectedFence(end.at(-1)!)).toBe(true);
    expect(t.inMessageBytes).toBe(0);
  });

  it("fences a long run of messages once, at the end of the chunk (one WebSocket message, one answer)", () => {
    const { tracker: t } = setup(FENCED, 8, 1);
    t.fromViewer(Uint8Array.from(setEncodings([0, -312])));
    const msg = serverCut(1000);
    const stream = Uint8Array.from(Array.from({ length: 100 }, () => msg).flat());
    const out = t.fromServer(stream);
    expect(out.map((p) => (isInjectedFence(p) ? "fence" : p.length))).toEqual([stream.length, "fence"]);
    // The input itself, not a copy.
    expect(out[0]!.buffer).toBe(stream.buffer);
    // Ending inside the next message: the fence goes at the last boundary, the rest after it.
    const more = Uint8Array.from([...msg, ...msg, ...msg.slice(0, 300)]);
    const out2 = t.fromServer(more);
    expect(out2.map((p) => (isInjectedFence(p) ? "fence" : p.length))).toEqual([2 * msg.length, "fence", 300]);
    expect(out2[2]!.buffer).toBe(more.buffer);
    // Nothing new ended: no fence.
    expect(t.fromServer(Uint8Array.from(msg.slice(300, 400))).some(isInjectedFence)).toBe(false);
  });
});

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

// ---------------------------------------------------------------- properties

/** A generated viewer message with what a view-only tracker must forward for it. */
type ClientGen = { kind: number; a: number; b: number; encs: number[] };
const clientGen: fc.Arbitrary<ClientGen> = fc.record({
  kind: fc.integer({ min: 0, max: 17 }),
  a: fc.nat(255),
  b: fc.nat(300),
  encs: fc.array(fc.constantFrom(...FRAMEABLE, ...TUNING, ...UNFRAMEABLE), { maxLength: 12 }),
});

/**
 * Turns generated messages into ops, tracking what the viewer asked and the server confirmed
 * (ExtendedMouseButtons), and the exact bytes a view-only tracker forwards.
 */
function viewOnlyOps(gens: ClientGen[]): { ops: Op[]; out: Bytes } {
  const ops: Op[] = [];
  const out: Bytes = [];
  let asked = false;
  let confirmed = false;
  const pass = (m: Bytes) => {
    ops.push(["c", m]);
    out.push(...m);
  };
  const drop = (m: Bytes) => ops.push(["c", m]);
  for (const g of gens) {
    switch (g.kind) {
      case 0: pass(setPixelFormat(PF32)); break;
      case 1: {
        const encs = g.a & 1 ? [...g.encs, -316] : g.encs;
        ops.push(["c", setEncodings(encs)]);
        out.push(...setEncodings(rewritten(encs)));
        asked = encs.includes(-316);
        if (!asked) confirmed = false;
        break;
      }
      case 2: pass(fbur(g.a & 1)); break;
      case 3: pass(enableCU()); break;
      case 4: pass(clientFence(g.a << 24, fill(g.b % 65, 1))); break;
      case 5: drop(keyEvent()); break;
      case 6: drop(asked && confirmed && g.a & 0x80 ? pointerExt(g.a, g.b & 3) : pointer(g.a)); break;
      case 7: drop(cutText(g.b, (g.a & 1) === 1)); break;
      case 8: drop(xvp()); break;
      case 9: drop(setDesktopSize(g.a % 4)); break;
      case 10: drop(gii(g.b, (g.a & 1) === 1)); break;
      case 11: drop(qemuKey()); break;
      case 12: drop(qemuAudio((g.a % 3) as 0 | 1 | 2)); break;
      case 13: // the server confirms extended mouse buttons
        ops.push(["s", fbu([{ enc: -316, w: 0, h: 0, body: [] }])]);
        confirmed = true;
        break;
      case 14: ops.push(["s", fbu([{ enc: 0, w: g.a % 5, h: 3, body: fill((g.a % 5) * 3 * 4) }])]); break;
      case 15: ops.push(["s", serverCut(g.b)]); break;
      case 16: pass(setPixelFormat(PF32)); break;
      case 17: ops.push(["s", bell()]); break;
    }
  }
  return { ops, out };
}

const cutsArb = fc.array(fc.nat(4000), { maxLength: 30 });
const resumeArb = fc.array(fc.nat(60), { maxLength: 6 });
const verArb = fc.constantFrom<Version>(3, 7, 8);
const secArb = fc.constantFrom<Security>(1, 2);

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

// ---- generated console messages
type ServerGen = { kind: number; rects: RectGen[]; n: number; last: boolean };
type RectGen = { enc: number; w: number; h: number; p: number[] };
const rectGen: fc.Arbitrary<RectGen> = fc.record({
  enc: fc.integer({ min: 0, max: 27 }),
  w: fc.nat(36),
  h: fc.nat(36),
  p: fc.array(fc.nat(255), { minLength: 64, maxLength: 64 }),
});
const serverGen: fc.Arbitrary<ServerGen> = fc.record({
  kind: fc.integer({ min: 0, max: 9 }),
  rects: fc.array(rectGen, { maxLength: 5 }),
  n: fc.nat(300),
  last: fc.boolean(),
});

function serverMessage(g: ServerGen, bpp: number, tp: number): Bytes {
  switch (g.kind) {
    case 0:
    case 1:
    case 2:
      return fbu(g.rects.map((r) => rect(r, bpp, tp)), g.last);
    case 3: return colourMap(g.n % 20);
    case 4: return bell();
    case 5: return serverCut(g.n, g.last);
    case 6: return endCU();
    case 7: return serverFence((g.n & 1) << 31, fill(g.n % 65, 2));
    case 8: return xvpServer(g.n & 1);
    default: return qemuAudioServer((g.n % 3) as 0 | 1 | 2, g.n);
  }
}

/** One rectangle of a generated encoding, sized small; `p` feeds the choices. */
function rect(g: RectGen, bpp: number, tp: number): Rect {
  const small = (k: number, max: number) => g.p[k]! % (max + 1);
  const w = g.w;
  const h = g.h;
  switch (g.enc) {
    case 0: { const rw = small(0, 8), rh = small(1, 8); return { enc: 0, w: rw, h: rh, body: fill(rw * rh * bpp) }; }
    case 1: return { enc: 1, w, h, body: fill(4) };
    case 2: { const n = small(0, 4); return { enc: 2, w, h, body: [...u32(n), ...fill(bpp), ...fill(n * (bpp + 8))] }; }
    case 3: { // Hextile, tile by tile
      const body: Bytes = [];
      let k = 0;
      for (let ty = 0; ty < h; ty += 16)
        for (let tx = 0; tx < w; tx += 16) {
          const tw = Math.min(16, w - tx), th = Math.min(16, h - ty);
          const sub = g.p[k++ % 64]! & 0x1f;
          body.push(sub);
          if (sub & 1) body.push(...fill(tw * th * bpp));
          else {
            if (sub & 2) body.push(...fill(bpp));
            if (sub & 4) body.push(...fill(bpp));
            if (sub & 8) {
              const n = g.p[k++ % 64]! % 6;
              body.push(n, ...fill(n * (sub & 16 ? bpp + 2 : 2)));
            }
          }
        }
      return { enc: 5, w, h, body };
    }
    case 4: case 5: case 6: { const n = small(0, 200); return { enc: [6, 16, -307][g.enc - 4]!, w, h, body: [...u32(n), ...fill(n)] }; }
    case 7: { const n = small(0, 200); return { enc: 50, w, h, body: [...u32(n), ...u32(g.p[1]!), ...fill(n)] }; }
    case 8: case 9: case 10: case 11: case 12: case 13: { // Tight and TightPNG
      const enc = g.p[0]! & 1 ? 7 : -260;
      const resets = g.p[1]! & 0x0f;
      const method = g.enc - 8; // fill, jpeg, png, copy, palette, gradient
      if (method === 0) return { enc, w, h, body: [0x80 | resets, ...fill(tp)] };
      if (method === 1 || method === 2) {
        const n = g.p[2]! % 16 ? small(3, 200) : 16384 + small(3, 50); // 3-byte lengths now and then
        return { enc, w, h, body: [(method === 1 ? 0x90 : 0xa0) | resets, ...compact(n), ...fill(n)] };
      }
      const rw = small(4, 12), rh = small(5, 6);
      const stream = (g.p[6]! & 3) << 4;
      let head: Bytes;
      let size: number;
      if (method === 3) {
        const explicit = g.p[7]! & 1;
        head = explicit ? [0x40 | stream | resets, 0] : [stream | resets];
        size = rw * rh * tp;
      } else if (method === 4) {
        const colours = 2 + small(8, 254);
        head = [0x40 | stream | resets, 1, colours - 1, ...fill(colours * tp)];
        size = (colours <= 2 ? Math.floor((rw + 7) / 8) : rw) * rh;
      } else {
        head = [0x40 | stream | resets, 2];
        size = rw * rh * tp;
      }
      const data = size < 12 ? fill(size) : (() => { const n = small(9, 150); return [...compact(n), ...fill(n)]; })();
      return { enc, w: rw, h: rh, body: [...head, ...data] };
    }
    case 14: { const cw = small(0, 10), ch = small(1, 10); return { enc: -239, w: cw, h: ch, body: fill(cw * ch * bpp + Math.floor((cw + 7) / 8) * ch) }; }
    case 15: { const cw = small(0, 10), ch = small(1, 10); return { enc: -240, w: cw, h: ch, body: cw && ch ? fill(6 + 2 * Math.floor((cw + 7) / 8) * ch) : [] }; }
    case 16: { const n = small(0, 3); return { enc: -308, w, h, body: [n, 0, 0, 0, ...fill(16 * n)] }; }
    case 17: return { enc: -261, w, h, body: [g.p[0]! & 7] };
    case 18: { const cw = small(0, 6), ch = small(1, 6); return { enc: 0x574d5664, w: cw, h: ch, body: [0, 0, ...fill(2 * cw * ch * bpp)] }; }
    case 19: { const cw = small(0, 6), ch = small(1, 6); return { enc: 0x574d5664, w: cw, h: ch, body: [1, 0, ...fill(cw * ch * 4)] }; }
    default: return { enc: [-223, -257, -258, -259, -312, -313, -316, -223][g.enc - 20]!, w, h, body: [] };
  }
}
