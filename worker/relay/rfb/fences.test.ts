/** Fence credit: fences injected at boundaries, answers removed and credited. */
import { describe, expect, it } from "vitest";
import { clientFence, fbu, fbur, FENCED, fill, isInjectedFence, serverCut, serverFence, setEncodings, setup } from "./rfb-test-kit.ts";
import { FENCE_TAG } from "./tracker.ts";

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
