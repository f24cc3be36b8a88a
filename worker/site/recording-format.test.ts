import { describe, expect, it } from "vitest";
import { RfbTracker } from "../relay/rfb/tracker.ts";
import { decodeRecording, encodeHeader, encodeMark, encodeRecord, messageLength, RecordKind, ViewerMessages } from "./recording-format.ts";

const enc = new TextEncoder();

describe("recording format", () => {
  it("round-trips a header and records", () => {
    const header = { format: 1 as const, id: "s.0", site: "s", hypervisor: "h", vm: "v", user: "u", startedAt: "2026-01-01T00:00:00.000Z", recordInput: false };
    const bytes = Uint8Array.from([...encodeHeader(header), ...encodeMark(5, { mark: "connect" }), ...encodeRecord(RecordKind.server, 7, Uint8Array.from([1, 2]))]);
    const { header: h, records } = decodeRecording(bytes);
    expect(h).toEqual(header);
    expect(records.map((r) => [r.kind, r.ms, r.payload.length])).toEqual([[3, 5, 18], [1, 7, 2]]);
  });

  it("keeps SetPixelFormat and SetEncodings across chunk splits, skips update requests and (by default) input", () => {
    const spf = new Uint8Array(20);
    const setEnc = Uint8Array.from([2, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7]);
    const fbur = Uint8Array.from([3, 1, 0, 0, 0, 0, 0, 8, 0, 8]);
    const key = Uint8Array.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
    const cut = Uint8Array.from([6, 0, 0, 0, 0, 0, 0, 3, 120, 121, 122]);
    const all = Uint8Array.from([...spf, ...setEnc, ...fbur, ...key, ...cut]);
    for (const keepInput of [false, true]) {
      const m = new ViewerMessages(keepInput);
      const kept: Uint8Array[] = [];
      let inputs = 0;
      for (let i = 0; i < all.length; i += 3) {
        const r = m.feed(all.subarray(i, i + 3));
        kept.push(...r.kept);
        inputs += r.inputs;
      }
      expect(kept.map((k) => k[0])).toEqual(keepInput ? [0, 2, 4, 6] : [0, 2]);
      expect(kept[1]).toEqual(setEnc);
      expect(inputs).toBe(keepInput ? 2 : 0);
    }
  });

  it("stops at a message type it does not know", () => {
    const m = new ViewerMessages(false);
    m.feed(Uint8Array.from([77, 1, 2]));
    expect(m.lost).toBe(true);
    expect(messageLength([255, 9])).toBeNull();
  });

  it("the tracker tells where ServerInit begins: after the security result, never inside the handshake", () => {
    const t = new RfbTracker({ viewOnly: false, fenceCredit: false, watchInput: false });
    const down = (b: number[] | Uint8Array) => t.fromServer(Uint8Array.from(b));
    down(enc.encode("RFB 003.008\n"));
    t.fromViewer(enc.encode("RFB 003.008\n"));
    down([1, 1]);
    t.fromViewer(Uint8Array.from([1]));
    expect(t.serverInitAt).toBeUndefined();
    down([0, 0, 0, 0, 3, 32]); // SecurityResult OK, then ServerInit's first bytes in the same chunk
    expect(t.serverInitAt).toBe(12 + 2 + 4);
  });
});
