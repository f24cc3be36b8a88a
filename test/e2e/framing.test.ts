/// <reference lib="dom" />
/**
 * Issue 10, clickjacking: a page on another origin frames a live full-control console. The edge's
 * CSP (`frame-ancestors 'none'` unless FRAME_ANCESTORS names the origin) makes Chromium refuse to
 * render it, and the console's single-use ticket is never spent by the hidden frame.
 */
import { describe, expect, it } from "vitest";
import { e2eSite } from "../harness/e2e-site.ts";

let framed = "";
const site = e2eSite("e2e-framing", {
  lab: () => [{ id: "desk", name: "Desktop", port: site.desktop.port }],
  browser: true,
  // The attacker's page, on another loopback address: another origin.
  foreign: () => `<!doctype html><title>win a prize</title><iframe id="f" src="${framed}" width="800" height="600"></iframe>`,
});
const { api: admin, name: SITE } = site;

describe("a foreign page framing a console", () => {
  it("is refused by the browser, and the ticket stays unspent", async () => {
    const { pageUrl } = await admin.openConsole(SITE, "lab", "desk");
    framed = pageUrl;
    const context = await site.browser.newContext();
    const page = await context.newPage();
    const refused = page.waitForEvent("console", (m) => /frame-ancestors/.test(m.text()));
    await page.goto(site.foreign.url);
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
