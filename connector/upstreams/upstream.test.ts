/** The one greeting wait every upstream type goes through. */
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { STALLED_SERVER_PATIENCE_MS } from "./handshake-finisher.ts";
import { awaitGreeting, UpstreamError } from "./upstream.ts";

afterEach(() => vi.useRealTimers());

describe("awaitGreeting", () => {
  it("hands on the stream with its first bytes put back", async () => {
    const stream = new PassThrough();
    const ready = awaitGreeting(stream, { signal: new AbortController().signal });
    stream.write("RFB 003.008\n");
    const got = await ready;
    expect(got.read()?.toString()).toBe("RFB 003.008\n");
  });

  it("ends a silent server's console after 15 s with 4504, and keeps the connection to finish it, for a bounded time", async () => {
    vi.useFakeTimers();
    const stream = new PassThrough();
    const result = awaitGreeting(stream, { signal: new AbortController().signal }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(15_000);
    const err = (await result) as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect([err.code, err.message]).toEqual([CloseCode.upstreamTimeout, "The VNC server accepted the connection but sent no greeting within 15 s."]);
    // Closing it now would count as a failed attempt on the server once it wakes up.
    expect(stream.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(STALLED_SERVER_PATIENCE_MS);
    expect(await err.finishing).toEqual({ outcome: "timeout", detail: "the server never greeted" });
    expect(stream.writableEnded).toBe(true);
  });

  it("a viewer that leaves while the server has not greeted yet: the connection is kept to be finished", async () => {
    const stream = new PassThrough();
    const abort = new AbortController();
    const result = awaitGreeting(stream, { signal: abort.signal }).catch((e: unknown) => e);
    abort.abort();
    const err = (await result) as UpstreamError;
    expect(err.code).toBe(CloseCode.ended);
    expect(err.finishing).toBeInstanceOf(Promise);
    expect(stream.destroyed).toBe(false);
    stream.destroy();
    expect((await err.finishing)?.outcome).toBe("gone");
  });

  it("says so when the server closes without a greeting (a blacklisted address)", async () => {
    const stream = new PassThrough();
    const result = awaitGreeting(stream, { signal: new AbortController().signal }).catch((e: unknown) => e);
    stream.end();
    const err = (await result) as UpstreamError;
    expect(err.code).toBe(CloseCode.upstreamFailed);
    expect(err.message).toMatch(/closed the connection without a greeting/);
    expect(Buffer.byteLength(err.message)).toBeLessThanOrEqual(123);
  });
});
