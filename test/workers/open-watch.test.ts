/**
 * Issue #23 item 9: a connector that stopped (frozen process, TCP still up) must not keep getting
 * new consoles, and a console sent to it must not hang until the heartbeat deadline. An OPEN that
 * is not acknowledged in time goes to another live connector; the silent one is suspect until it
 * shows life. The object hibernates between the OPEN and its deadline.
 */
import { env, evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encodeData, encodeJson, encodeOpenAck, encodeOpenOk, type Frame, FrameType } from "../../shared/protocol/frames.ts";
import { OPEN_ACK_TIMEOUT_MS, OPEN_SILENCE_MS } from "../../shared/protocol/limits.ts";
import { CAPABILITIES } from "../../shared/protocol/messages.ts";
import { call, connectConnector, createSite, defaultHello, INVENTORY, openBrowser, openConsole, signIn, type TestConnector, type TestSocket } from "./helpers.ts";
import { later } from "./clock.ts";

let n = 0;
async function site() {
  const cookie = await signIn();
  const name = `watch${++n}`;
  return { cookie, name, token: await createSite(cookie, name), stub: env.SITE.get(env.SITE.idFromName(name)) };
}

async function connector(token: string, capabilities?: string[]): Promise<TestConnector> {
  const c = await connectConnector(token, { ...defaultHello(), ...(capabilities ? { capabilities } : {}) });
  expect((await c.nextFrame()).type).toBe(FrameType.welcome);
  return c;
}

/** The next frame of `type`, skipping others (CREDIT, DATA of other streams). */
async function frameOf(c: TestConnector, type: number, timeoutMs = 2000): Promise<Frame> {
  for (;;) {
    const f = await c.nextFrame(timeoutMs);
    if (f.type === type) return f;
  }
}

/** Something from `c`, and a round trip to the object, so it has surely been seen. */
async function speak(c: TestConnector, s: { cookie: string; name: string }): Promise<void> {
  c.send(encodeJson(FrameType.inventory, 0, { hypervisors: INVENTORY }));
  await call("GET", `/api/sites/${s.name}/vms`, undefined, s.cookie);
}

async function greets(c: TestConnector, stream: number, viewer: TestSocket): Promise<void> {
  c.send(encodeOpenOk(stream));
  c.send(encodeData(stream, new TextEncoder().encode("RFB 003.008\n")));
  expect(new TextDecoder().decode((await viewer.next()) as ArrayBuffer)).toBe("RFB 003.008\n");
}

describe("an OPEN nobody acknowledges goes to another connector", () => {
  it("connectors with `ack`: re-offered after OPEN_ACK_TIMEOUT_MS, across hibernation; the silent one gets no new consoles until it speaks", async () => {
    const s = await site();
    const live = await connector(s.token, [...CAPABILITIES]);
    // One console on `live`, so the fewest-consoles rule alone would pick the frozen one next.
    await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    const first = await frameOf(live, FrameType.open);
    live.send(encodeOpenAck(first.stream));
    const frozen = await connector(s.token, [...CAPABILITIES]);

    const viewer = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    const open = await frameOf(frozen, FrameType.open);
    // `frozen` stops here: no ack, nothing at all. The object sleeps before the deadline.
    await evictDurableObject(s.stub, { webSockets: "hibernate" });
    await later(OPEN_ACK_TIMEOUT_MS + 500, async () => {
      await speak(live, s); // `live` keeps talking (its heartbeats would do the same)
      expect(await runDurableObjectAlarm(s.stub)).toBe(true);
    });
    // The same console, offered to `live`; `frozen` is told to drop it, should it wake.
    const reoffered = await frameOf(live, FrameType.open);
    expect(reoffered.stream).toBe(open.stream);
    expect(reoffered).toMatchObject({ json: { hypervisor: "lab", vm: "desk" } });
    const dropped = await frameOf(frozen, FrameType.close);
    expect(dropped).toMatchObject({ stream: open.stream, code: 4504 });
    await greets(live, open.stream, viewer);
    // A late answer from `frozen` for that stream changes nothing.
    frozen.send(encodeOpenOk(open.stream));
    frozen.send(encodeData(open.stream, Uint8Array.from([9, 9, 9])));
    live.send(encodeData(open.stream, Uint8Array.from([1])));
    expect(new Uint8Array((await viewer.next()) as ArrayBuffer)).toEqual(Uint8Array.from([1]));

    // `frozen` did send frames at last (alive again); it leaves, and a new connector misses its
    // deadline the same way: suspect, it gets no new consoles though it has none.
    frozen.ws.close(1000, "bye");
    await frozen.closedWith();
    const frozen2 = await connector(s.token, [...CAPABILITIES]);
    await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    const open2 = await frameOf(frozen2, FrameType.open);
    await later(OPEN_ACK_TIMEOUT_MS + 500, async () => {
      await speak(live, s);
      await runDurableObjectAlarm(s.stub);
      expect((await frameOf(live, FrameType.open)).stream).toBe(open2.stream);
      for (let i = 0; i < 3; i++) {
        await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
        expect((await frameOf(live, FrameType.open)).type).toBe(FrameType.open);
      }
      expect((await frameOf(frozen2, FrameType.close)).stream).toBe(open2.stream);
      expect(frozen2.pending()).toBe(0);
      // It shows life: trusted again, and as the least loaded it gets the next console.
      await speak(frozen2, s);
      await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
      expect((await frameOf(frozen2, FrameType.open)).type).toBe(FrameType.open);
    });
  });

  it("a slow upstream is not a frozen connector: acknowledged, it may take long for OPEN_OK", async () => {
    const s = await site();
    const slow = await connector(s.token, [...CAPABILITIES]);
    const other = await connector(s.token, [...CAPABILITIES]);
    const viewer = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    const [first] = await Promise.race([
      frameOf(slow, FrameType.open).then((f) => [f, slow, other] as const),
      frameOf(other, FrameType.open).then((f) => [f, other, slow] as const),
    ]).then(([f, picked, spare]) => [{ f, picked, spare }]);
    first!.picked.send(encodeOpenAck(first!.f.stream));
    await later(30_000, async () => {
      await speak(first!.picked, s);
      await speak(first!.spare, s);
      await runDurableObjectAlarm(s.stub);
    });
    expect(first!.spare.pending()).toBe(0);
    await greets(first!.picked, first!.f.stream, viewer);
  });

  it("older connectors (no `ack`): only a connector silent since the OPEN for OPEN_SILENCE_MS loses it", async () => {
    const s = await site();
    const live = await connector(s.token);
    await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    await frameOf(live, FrameType.open);
    const frozen = await connector(s.token);
    const viewer = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    const open = await frameOf(frozen, FrameType.open);
    // Seconds are normal for an OPEN to an older connector: nothing moves.
    await later(OPEN_ACK_TIMEOUT_MS + 500, async () => {
      await speak(live, s);
      await runDurableObjectAlarm(s.stub);
    });
    expect(live.pending()).toBe(0);
    await later(OPEN_SILENCE_MS + 500, async () => {
      await speak(live, s);
      await runDurableObjectAlarm(s.stub);
    });
    expect((await frameOf(live, FrameType.open)).stream).toBe(open.stream);
    await greets(live, open.stream, viewer);
  });
});
