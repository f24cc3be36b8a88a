/**
 * The site object hibernates when idle and loses its memory; consoles must carry on from socket
 * attachments and SQLite when it wakes.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeData, encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import { auditUntil, call, createSite, openBrowser, openConsole, rfbHandshake, signIn, type TestConnector, welcomedConnector } from "./helpers.ts";
import { flushStreams, hibernate } from "./hibernate.ts";
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

  /**
   * A console the object cannot rebuild when it wakes is closed; the connector must hear it too,
   * or its upstream stays held (XenServer then refuses the VM's next console with 503).
   */
  describe("a console that cannot be restored after hibernation", () => {
    async function wakeWithBrokenAttachment(site: string, breakIt: (a: Record<string, unknown>) => Record<string, unknown>) {
      const cookie = await signIn();
      const token = await createSite(cookie, site);
      const connector = await welcomedConnector(token);
      const browser = await openBrowser((await openConsole(cookie, site)).wsUrl);
      const open = await connector.nextFrame();
      connector.send(encodeOpenOk(open.stream));
      await rfbHandshake(connector, open.stream, browser);
      await flushStreams(siteStub(site));
      await runInDurableObject(siteStub(site), (_o, state) => {
        for (const ws of state.getWebSockets()) {
          const a = ws.deserializeAttachment() as Record<string, unknown>;
          if (a.stream === open.stream) ws.serializeAttachment(breakIt(a));
        }
      });
      await evictDurableObject(siteStub(site), { webSockets: "hibernate" });
      // Any request wakes the object; nothing the connector or viewer sends is needed.
      await call("GET", `/api/sites/${site}/vms`, undefined, cookie);
      return { cookie, connector, browser, stream: open.stream };
    }

    async function closeFor(connector: TestConnector, stream: number) {
      for (;;) {
        const f = await connector.nextFrame(2000);
        if (f.type === FrameType.close && f.stream === stream) return f;
      }
    }

    it("an attachment without flow state: the connector gets CLOSE, the audit says why", async () => {
      const { cookie, connector, browser, stream } = await wakeWithBrokenAttachment("unflowed", ({ flow: _, ...a }) => a);
      expect((await browser.closedWith()).code).toBe(CloseCode.internal);
      expect(await closeFor(connector, stream)).toMatchObject({ code: CloseCode.internal });
      const row = await auditUntil(cookie, "?type=console.closed&site=unflowed", (rows) => rows.find((r) => r.detail?.stream === stream));
      expect(row.detail?.reason).toMatch(/interrupted/);
    });

    it("an RFB state the tracker refuses (StreamFault): the connector gets CLOSE, the audit says why", async () => {
      const { cookie, connector, browser, stream } = await wakeWithBrokenAttachment("unreadable", (a) => ({ ...a, rfb: { v: 0 } }));
      expect((await browser.closedWith()).code).toBe(CloseCode.internal);
      expect(await closeFor(connector, stream)).toMatchObject({ code: CloseCode.internal });
      const row = await auditUntil(cookie, "?type=console.closed&site=unreadable", (rows) => rows.find((r) => r.detail?.stream === stream));
      expect(row.detail?.reason).toMatch(/interrupted/);
    });
  });
});
