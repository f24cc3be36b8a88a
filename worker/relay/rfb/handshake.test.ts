/** The handshake in both directions, and the viewer's security type choice. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StreamFault } from "../stream-fault.ts";
import { cutsArb, PROPERTY_TIMEOUT_MS, resumeArb, RUNS } from "./rfb-generators.ts";
import { ascii, drive, FENCED, fill, flat, handshake, keyEvent, PF32, u16, u32, VIEW, type Op } from "./rfb-test-kit.ts";
import { RfbTracker, type Mode } from "./tracker.ts";

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
