/**
 * The XAPI `CONNECT /console` reply parser on arbitrary bytes: a parsed reply, "read more", or a
 * clear error, never a throw; and a real reply split at every byte boundary parses the same.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CONNECT_OK } from "../../../test/simulators/xapi/pool.ts";
import { type ConnectReply, parseConnectReply } from "./console-tunnel.ts";

const MAX = 16 * 1024;
/** 10,000 in the normal run (under a second); PORTHOLE_FUZZ_RUNS=1000000 for a long run. */
const RUNS = Number(process.env.PORTHOLE_FUZZ_RUNS) || 10_000;

/** Feeds `bytes` as the socket would, in pieces cut at `cuts`, and returns the first final answer. */
function feed(bytes: Buffer, cuts: number[], max = MAX): { result: ConnectReply; at: number } {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  points.push(bytes.length);
  let received = Buffer.alloc(0);
  let from = 0;
  for (const to of points) {
    received = Buffer.concat([received, bytes.subarray(from, to)]);
    from = to;
    const result = parseConnectReply(received, max);
    if (result.kind !== "incomplete") return { result, at: to };
  }
  return { result: { kind: "incomplete" }, at: bytes.length };
}

const headerLine = fc
  .tuple(fc.stringMatching(/^[A-Za-z-]{1,20}$/), fc.stringMatching(/^[\x20-\x7e]{0,40}$/))
  .map(([name, value]) => `${name}: ${value}\r\n`);

const reply = fc.record({
  status: fc.integer({ min: 100, max: 599 }),
  minor: fc.constantFrom("0", "1"),
  reason: fc.stringMatching(/^[\x20-\x7e]{0,30}$/),
  headers: fc.array(headerLine, { maxLength: 8 }),
  rest: fc.uint8Array({ maxLength: 64 }),
});

describe("XAPI CONNECT reply parser", () => {
  it("answers any bytes with a reply, 'incomplete' or a clear error, never a throw (10,000 cases)", () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      // Near-misses: HTTP-looking text with random damage.
      fc
        .tuple(fc.constantFrom("HTTP/1.1 ", "HTTP/1.0 ", "HTTP/2 ", "http/1.1 ", ""), fc.string({ maxLength: 60 }), fc.constantFrom("\r\n\r\n", "\n\n", "\r\n", ""), fc.uint8Array({ maxLength: 16 }))
        .map(([a, b, c, d]) => Buffer.concat([Buffer.from(a + b + c, "latin1"), d])),
    );
    fc.assert(
      fc.property(bytes, fc.integer({ min: 16, max: 512 }), (input, max) => {
        const buf = Buffer.from(input);
        const result = parseConnectReply(buf, max);
        const end = buf.indexOf("\r\n\r\n");
        switch (result.kind) {
          case "incomplete":
            expect(buf.length).toBeLessThanOrEqual(max);
            expect(end < 0 || end + 4 > max).toBe(true);
            break;
          case "error":
            expect(result.message).toMatch(/^a reply (header longer than \d+ bytes|that is not HTTP\/1\.x)$/);
            break;
          case "reply":
            expect(end + 4).toBeLessThanOrEqual(max);
            expect(buf.subarray(0, 9).toString("latin1")).toMatch(/^HTTP\/1\.[01] $/);
            expect(result.status).toBeGreaterThanOrEqual(0);
            expect(result.status).toBeLessThanOrEqual(999);
            expect(Buffer.compare(result.rest, buf.subarray(end + 4))).toBe(0);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("parses a generated reply the same however it is split (10,000 cases)", () => {
    fc.assert(
      fc.property(reply, fc.array(fc.nat({ max: 1200 }), { maxLength: 6 }), ({ status, minor, reason, headers, rest }, cuts) => {
        const head = `HTTP/1.${minor} ${status}${reason ? ` ${reason}` : ""}\r\n${headers.join("")}\r\n`;
        const bytes = Buffer.concat([Buffer.from(head, "latin1"), rest]);
        const { result, at } = feed(bytes, cuts);
        expect(result.kind).toBe("reply");
        if (result.kind !== "reply") return;
        expect(result.status).toBe(status);
        // Whatever arrived with the end of the header is handed on, byte for byte.
        expect(Buffer.compare(result.rest, bytes.subarray(head.length, at))).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });

  it("xapi's own 200 reply followed by the RFB greeting, split at every byte boundary", () => {
    const bytes = Buffer.from(`${CONNECT_OK}RFB 003.008\n`, "latin1");
    for (let cut = 1; cut < bytes.length; cut++) {
      const { result, at } = feed(bytes, [cut]);
      expect(result).toMatchObject({ kind: "reply", status: 200 });
      if (result.kind === "reply") expect(result.rest.toString("latin1")).toBe("RFB 003.008\n".slice(0, at - CONNECT_OK.length));
    }
    // Byte by byte: "incomplete" until the last byte of the blank line, then the reply.
    const bytewise = feed(bytes, Array.from({ length: bytes.length }, (_, i) => i));
    expect(bytewise.at).toBe(CONNECT_OK.length);
    expect(bytewise.result).toMatchObject({ kind: "reply", status: 200 });
  });

  it("refuses a header that never ends instead of reading forever", () => {
    const endless = Buffer.from(`HTTP/1.1 200 OK\r\n${"X-Pad: y\r\n".repeat(2000)}`, "latin1");
    expect(parseConnectReply(endless)).toEqual({ kind: "error", message: `a reply header longer than ${MAX} bytes` });
    expect(parseConnectReply(Buffer.from("SSH-2.0-OpenSSH\r\n\r\n"))).toEqual({ kind: "error", message: "a reply that is not HTTP/1.x" });
  });
});
