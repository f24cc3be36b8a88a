/**
 * The whole path, for real: Node RFB client or headless Chromium (noVNC) → wrangler dev edge →
 * site Durable Object → the connector process → Xvnc.
 */
import { mkdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { openAndReadRed } from "../harness/console-page.ts";
import { e2eSite } from "../harness/e2e-site.ts";
import { RfbClient, shareOfColour } from "../harness/rfb-client.ts";
import { DESKTOP_BACKGROUND } from "../harness/xvnc.ts";

const site = e2eSite("e2e-console", { lab: () => [{ id: "desk", name: "Test desktop", port: site.desktop.port }], browser: true });
const { desktop, api, name: SITE } = site;

describe("a console through the edge", () => {
  it("lists the connector's VM", async () => {
    const vms = await api.call("GET", `/api/sites/${SITE}/vms`);
    expect(vms.body).toEqual([{ hypervisor: "lab", id: "desk", name: "Test desktop", powerState: "unknown", level: "share" }]);
  });

  it("completes the RFB handshake and reads the desktop's real framebuffer", async () => {
    const { wsUrl, expiresAt } = await api.openConsole(SITE, "lab", "desk");
    expect(wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/ws\/console\/e2e-console\?ticket=/);
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(60_000);
    const rfb = await RfbClient.open(wsUrl);
    const init = await rfb.handshake();
    expect(init).toMatchObject({ width: desktop.width, height: desktop.height, name: "porthole-test" });
    const pixels = await rfb.readFramebuffer();
    expect(pixels.length).toBe(desktop.width * desktop.height * 4);
    // xlogo paints the screen red with a blue logo.
    expect(shareOfColour(pixels, DESKTOP_BACKGROUND)).toBeGreaterThan(0.4);
    expect(shareOfColour(pixels, { r: 0, g: 0, b: 255 })).toBeGreaterThan(0.05);
    rfb.close();
  });

  it("refuses a second use of the same wsUrl", async () => {
    const { wsUrl } = await api.openConsole(SITE, "lab", "desk");
    const first = await RfbClient.open(wsUrl);
    await first.handshake();
    const second = await RfbClient.open(wsUrl);
    const closed = await second.closed();
    expect(closed.code).toBe(CloseCode.gone);
    expect(closed.reason).toMatch(/already used/);
    first.close();
  });

  it("refuses a browser socket from a foreign origin", async () => {
    const { wsUrl } = await api.openConsole(SITE, "lab", "desk");
    await expect(RfbClient.open(wsUrl, { origin: "https://evil.example" })).rejects.toThrow("HTTP 403");
  });

  it("shows the live desktop in headless Chromium through the console page", async () => {
    const { pageUrl } = await api.openConsole(SITE, "lab", "desk");
    mkdirSync("test-results", { recursive: true });
    const seen = await openAndReadRed(site.browser, pageUrl, "test-results/console.png");
    // noVNC's canvas has the desktop's real geometry, and mostly xlogo's red background.
    expect(seen).toMatchObject({ width: desktop.width, height: desktop.height });
    expect(seen.share).toBeGreaterThan(0.4);
  });

  it("takes the single-use ticket out of the address bar", async () => {
    const { pageUrl } = await api.openConsole(SITE, "lab", "desk");
    const page = await site.browser.newPage();
    await page.goto(pageUrl);
    await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    expect(page.url()).not.toContain("ticket=");
    await page.close();
  });
});

describe("when the connector goes away", () => {
  it("closes the console with a reason the page shows, and works again after the connector returns", async () => {
    const { pageUrl, wsUrl: _unused } = await api.openConsole(SITE, "lab", "desk");
    const page = await site.browser.newPage();
    await page.goto(pageUrl);
    await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    const { wsUrl } = await api.openConsole(SITE, "lab", "desk");
    const rfb = await RfbClient.open(wsUrl);
    await rfb.handshake();

    await site.connector.stop("SIGKILL");
    const closed = await rfb.closed(30_000);
    expect(closed.code).toBe(CloseCode.connectorOffline);
    expect(closed.reason).toMatch(/connector went offline/);
    // A passing cause: the page says why and counts down to a reconnect (console-page.test.ts).
    await page.waitForSelector("body[data-state=reconnecting]", { timeout: 30_000 });
    expect(await page.textContent("#reconnect-text")).toMatch(/connector went offline/);
    await page.close();

    // While it is down, a new console is refused with a clear error.
    const offline = await api.call<{ error: { code: string } }>("POST", "/api/consoles", { site: SITE, hypervisor: "lab", vm: "desk" });
    expect(offline.status).toBe(503);
    expect(offline.body.error.code).toBe("connector_offline");

    await site.restartConnector();
    const again = await RfbClient.open((await api.openConsole(SITE, "lab", "desk")).wsUrl);
    expect((await again.handshake()).width).toBe(desktop.width);
    again.close();
  });
});
