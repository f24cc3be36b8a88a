/// <reference lib="dom" />
/**
 * Issue 10, clickjacking: a page on another origin frames a live full-control console. The edge's
 * CSP (`frame-ancestors 'none'` unless FRAME_ANCESTORS names the origin) makes Chromium refuse to
 * render it, and the console's single-use ticket is never spent by the hidden frame.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient } from "../harness/api.ts";
import { foreignPage, launchBrowser } from "../harness/browser.ts";
import { labConfig, type RunningConnector, startConnector } from "../harness/connector.ts";

const edge = inject("edge");
const desktop = inject("desktop");
const SITE = "e2e-framing";
const admin = new ApiClient(edge.url);
let connector: RunningConnector;
let browser: Browser;
let foreign: Awaited<ReturnType<typeof foreignPage>> | undefined;
let framed = "";

beforeAll(async () => {
  await admin.signIn(edge.username, edge.password);
  const token = await admin.createSite(SITE);
  browser = await launchBrowser();
  connector = await startConnector(labConfig(edge.url, token, [{ id: "desk", name: "Desktop", port: desktop.port }]));
  // The attacker's page, on another loopback address: another origin.
  foreign = await foreignPage(() => `<!doctype html><title>win a prize</title><iframe id="f" src="${framed}" width="800" height="600"></iframe>`);
});

afterAll(async () => {
  await Promise.allSettled([connector?.stop(), browser?.close(), foreign?.close()]);
});

describe("a foreign page framing a console", () => {
  it("is refused by the browser, and the ticket stays unspent", async () => {
    const { pageUrl } = await admin.openConsole(SITE, "lab", "desk");
    framed = pageUrl;
    const context = await browser.newContext();
    const page = await context.newPage();
    const refused = page.waitForEvent("console", (m) => /frame-ancestors/.test(m.text()));
    await page.goto(foreign!.url);
    expect((await refused).text()).toMatch(/violates the following Content Security Policy directive: "frame-ancestors 'none'"\. The request has been blocked/);
    // The console's own page never ran inside the frame.
    const frame = page.frames().find((f) => f !== page.mainFrame())!;
    expect(await frame.$("#screen")).toBeNull();
    // So the single-use ticket is still good: opening the console directly works.
    const direct = await context.newPage();
    await direct.goto(pageUrl);
    await direct.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    await context.close();
  });
});
