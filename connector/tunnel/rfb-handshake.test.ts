/**
 * The handshake tracker says "done" exactly when ServerInit has passed (None and VNC auth, RFB
 * 3.3/3.7/3.8), at the choice for other security types, and however the bytes are split.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RfbHandshake } from "./rfb-handshake.ts";

type Msg = { from: "server" | "client"; bytes: Buffer; last?: boolean };

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const serverInit = (name: string) => Buffer.concat([Buffer.from([4, 0, 3, 0]), Buffer.alloc(16, 1), u32(name.length), Buffer.from(name)]);
const s = (bytes: Buffer | string, last = false): Msg => ({ from: "server", bytes: Buffer.from(bytes), last });
const c = (bytes: Buffer | string): Msg => ({ from: "client", bytes: Buffer.from(bytes) });

/** Conversations; the message marked `last` completes the handshake with its final byte. */
const conversations: Record<string, Msg[]> = {
  "3.8 None": [s("RFB 003.008\n"), c("RFB 003.008\n"), s(Buffer.from([1, 1])), c(Buffer.from([1])), s(u32(0)), c(Buffer.from([1])), s(serverInit("desk"), true)],
  "3.8 VNC auth": [
    s("RFB 003.008\n"), c("RFB 003.008\n"), s(Buffer.from([2, 1, 2])), c(Buffer.from([2])), s(Buffer.alloc(16, 7)), c(Buffer.alloc(16, 9)),
    s(u32(0)), c(Buffer.from([1])), s(serverInit("a desktop with a name"), true),
  ],
  "3.7 None": [s("RFB 003.008\n"), c("RFB 003.007\n"), s(Buffer.from([1, 1])), c(Buffer.from([1])), c(Buffer.from([1])), s(serverInit(""), true)],
  "3.3 None": [s("RFB 003.008\n"), c("RFB 003.003\n"), s(u32(1)), c(Buffer.from([0])), s(serverInit("x"), true)],
  "3.3 VNC auth": [s("RFB 003.003\n"), c("RFB 003.003\n"), s(Buffer.concat([u32(2), Buffer.alloc(16, 3)])), c(Buffer.alloc(16)), s(u32(0)), c(Buffer.from([1])), s(serverInit("x"), true)],
};

function run(messages: Msg[], split: (b: Buffer) => Buffer[]): { doneAfter: number | null; total: number } {
  let done = 0;
  const tracker = new RfbHandshake(() => done++);
  let doneAfter: number | null = null;
  let sent = 0;
  for (const m of messages) {
    for (const piece of split(m.bytes)) {
      if (m.from === "server") tracker.fromServer(piece);
      else tracker.fromClient(piece);
      sent += piece.length;
      if (done > 0 && doneAfter === null) doneAfter = sent;
    }
  }
  expect(done).toBeLessThanOrEqual(1);
  return { doneAfter, total: sent };
}

describe("RFB handshake tracker", () => {
  for (const [name, messages] of Object.entries(conversations)) {
    it(`${name}: done exactly when ServerInit has passed, however the bytes are split`, () => {
      const total = messages.reduce((n, m) => n + m.bytes.length, 0);
      expect(run(messages, (b) => [b]).doneAfter).toBe(total);
      expect(run(messages, (b) => [...b].map((x) => Buffer.from([x]))).doneAfter).toBe(total);
      // Not done one byte early.
      const short = messages.map((m) => (m.last ? { ...m, bytes: m.bytes.subarray(0, -1) } : m));
      expect(run(short, (b) => [b]).doneAfter).toBeNull();
      fc.assert(
        fc.property(fc.array(fc.nat({ max: 40 }), { maxLength: 5 }), (cuts) => {
          const split = (b: Buffer) => {
            const points = [...new Set(cuts.filter((x) => x > 0 && x < b.length))].sort((x, y) => x - y);
            return [0, ...points].map((from, i) => b.subarray(from, points[i] ?? b.length));
          };
          expect(run(messages, split).doneAfter).toBe(total);
        }),
        { numRuns: 200 },
      );
    });
  }

  it("counts another security type as done once it is chosen (its handshake is not followed)", () => {
    const messages = [s("RFB 003.008\n"), c("RFB 003.008\n"), s(Buffer.from([2, 19, 2])), c(Buffer.from([19]))];
    expect(run(messages, (b) => [b]).doneAfter).toBe(12 + 12 + 3 + 1);
  });

  it("stays waiting during VNC authentication (a person typing a password)", () => {
    const messages = conversations["3.8 VNC auth"]!.slice(0, 5); // the challenge is out, no response yet
    expect(run(messages, (b) => [b]).doneAfter).toBeNull();
  });

  it("a refused authentication ends the tracking", () => {
    const messages = [s("RFB 003.008\n"), c("RFB 003.008\n"), s(Buffer.from([1, 2])), c(Buffer.from([2])), s(Buffer.alloc(16)), c(Buffer.alloc(16)), s(u32(1))];
    expect(run(messages, (b) => [b]).doneAfter).toBe(12 + 12 + 2 + 1 + 16 + 16 + 4);
  });
});
