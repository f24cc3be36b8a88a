import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { HandshakeLimiter } from "./handshake-limiter.ts";
import { UpstreamError } from "./upstream.ts";

describe("handshake limiter", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("lets at most `max` handshakes run per server, the rest in FIFO order", async () => {
    const limiter = new HandshakeLimiter(2);
    const signal = new AbortController().signal;
    const order: number[] = [];
    const slots = await Promise.all([limiter.acquire("a:5900", signal), limiter.acquire("a:5900", signal)]);
    const waiting = [3, 4, 5].map((n) => limiter.acquire("a:5900", signal).then((slot) => (order.push(n), slot)));
    // Another server has its own turns.
    await limiter.acquire("b:5900", signal);
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([]);
    expect(limiter.inFlight("a:5900")).toBe(2);
    slots[1]!.release();
    slots[1]!.release(); // idempotent: frees one turn only
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([3]);
    slots[0]!.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([3, 4]);
    (await waiting[0]!).release();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([3, 4, 5]);
    expect(limiter.inFlight("a:5900")).toBe(2);
  });

  it("tells an open that waited 30 s to try again (4504), and forgets one whose viewer left", async () => {
    const limiter = new HandshakeLimiter(1);
    const held = await limiter.acquire("a:5900", new AbortController().signal);
    const leaving = new AbortController();
    const left = limiter.acquire("a:5900", leaving.signal).catch((e: unknown) => e);
    const patient = limiter.acquire("a:5900", new AbortController().signal).catch((e: unknown) => e);
    leaving.abort();
    expect(await left).toMatchObject({ code: CloseCode.ended });
    await vi.advanceTimersByTimeAsync(29_999);
    const late = await Promise.race([patient, Promise.resolve("still waiting")]);
    expect(late).toBe("still waiting");
    await vi.advanceTimersByTimeAsync(1);
    const err = await patient;
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).code).toBe(CloseCode.upstreamTimeout);
    expect((err as UpstreamError).message).toBe(
      "The VNC server is busy with consoles still connecting, or not answering: this one waited 30 s. Try again in a moment.",
    );
    expect(Buffer.byteLength((err as UpstreamError).message)).toBeLessThanOrEqual(123);
    held.release();
    expect(limiter.inFlight("a:5900")).toBe(0);
  });
});
