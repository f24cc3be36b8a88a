/**
 * The site object hibernates when idle and loses its memory; consoles must carry on from socket
 * attachments and SQLite when it wakes.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeData, encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import { call, createSite, openBrowser, openConsole, rfbHandshake, signIn, welcomedConnector } from "./helpers.ts";
import { hibernate } from "./hibernate.ts";
import { HEARTBEAT_INTERVAL_MS } from "../../shared/protocol/limits.ts";
import { later } from "./clock.ts";

const siteStub = (name: string) => env.SITE.get(env.SITE.idFromName(name));

describe("hibernation", () => {
  it("keeps relaying both ways after the object is evicted with sockets hibernated", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "sleepy");
    const connector = await welcomedConnector(token);
    const { wsUrl } = await openConsole(cookie, "sleepy");
    const browser = await openBrowser(wsUrl);
    const open = await connector.nextFrame();
    connector.send(encodeOpenOk(open.stream));
    await rfbHandshake(connector, open.stream, browser);
    // The object writes its state, as it would before sleeping, and sleeps.
    await hibernate(siteStub("sleepy"));

    connector.send(encodeData(open.stream, new Uint8Array([1, 2, 3])));
    expect(new Uint8Array((await browser.next()) as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 3]));
    browser.ws.send(new Uint8Array([3, 1, 0, 0, 0, 0, 0, 8, 0, 8])); // FramebufferUpdateRequest
    expect(await connector.nextFrame()).toMatchObject({ type: FrameType.data, stream: open.stream });
    // The inventory came back from SQLite: the VM list and new consoles still work.
    const vms = (await (await call("GET", "/api/sites/sleepy/vms", undefined, cookie)).json()) as unknown[];
    expect(vms).toHaveLength(1);
    await openConsole(cookie, "sleepy");
    connector.ws.close(1000, "bye");
    expect((await browser.closedWith()).code).toBe(CloseCode.connectorOffline);
  });

  it("an idle site with only a connector has no alarm: nothing wakes it", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "quiet");
    await welcomedConnector(token);
    // The HELLO deadline's alarm is gone once HELLO arrived; nothing else needs one.
    expect(await runInDurableObject(siteStub("quiet"), (_o, state) => state.storage.getAlarm())).toBeNull();
    expect(await runDurableObjectAlarm(siteStub("quiet"))).toBe(false);
  });

  it("a silent connector is dropped when the object next wakes, before anything is routed to it", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "silent");
    const connector = await welcomedConnector(token);
    await evictDurableObject(siteStub("silent"), { webSockets: "hibernate" });
    // Nothing is sent for longer than the heartbeat timeout; then someone asks for a console.
    const res = await later(60_000, () => call("POST", "/api/consoles", { site: "silent", hypervisor: "lab", vm: "desk" }, cookie));
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("connector_offline");
    const closed = await connector.closedWith();
    expect(closed.code).toBe(CloseCode.tooSlow);
    expect(closed.reason).toMatch(/no heartbeat/);
  });

  it("a connector carrying a console is watched by the alarm: silent, it is dropped and the console told", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "watched");
    const connector = await welcomedConnector(token);
    const browser = await openBrowser((await openConsole(cookie, "watched")).wsUrl);
    const open = await connector.nextFrame();
    connector.send(encodeOpenOk(open.stream));
    await rfbHandshake(connector, open.stream, browser);
    // The alarm waits for the heartbeat timeout, not for a fixed interval.
    const alarm = await runInDurableObject(siteStub("watched"), (_o, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm! - Date.now()).toBeGreaterThan(HEARTBEAT_INTERVAL_MS);
    expect(await later(60_000, () => runDurableObjectAlarm(siteStub("watched")))).toBe(true);
    expect((await connector.closedWith()).code).toBe(CloseCode.tooSlow);
    expect((await browser.closedWith()).code).toBe(CloseCode.connectorOffline);
    // Nothing left to watch: no further alarm.
    expect(await runDurableObjectAlarm(siteStub("watched"))).toBe(false);
  });
});
