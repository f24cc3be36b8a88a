/**
 * The site object hibernates when idle and loses its memory; consoles must carry on from socket
 * attachments and SQLite when it wakes.
 */
import { env, evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeData, encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import { call, createSite, openBrowser, openConsole, rfbHandshake, signIn, welcomedConnector } from "./helpers.ts";
import { PERSIST_DELAY_MS } from "../../worker/site/stream-book.ts";
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
    // Idle long enough for the object to have written its state, as it would before sleeping.
    await new Promise((r) => setTimeout(r, PERSIST_DELAY_MS + 150));
    await evictDurableObject(siteStub("sleepy"), { webSockets: "hibernate" });

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

  it("the alarm closes a connector that stopped sending heartbeats", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "silent");
    const connector = await welcomedConnector(token);
    // Nothing is sent; once the heartbeat timeout has passed the alarm drops the connector.
    expect(await later(60_000, () => runDurableObjectAlarm(siteStub("silent")))).toBe(true);
    const closed = await connector.closedWith();
    expect(closed.code).toBe(CloseCode.tooSlow);
    expect(closed.reason).toMatch(/no heartbeat/);
  });
});
