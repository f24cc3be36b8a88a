/// <reference lib="dom" />
/**
 * The operator app at `/`, signing in and out, driven as a person would: every control found by
 * its role and accessible name (the names in the contract's "Web app" section), on the real edge.
 * Also: a console address opened while signed out, and the app at a phone's width.
 */
import { describe, expect, it } from "vitest";
import { appSite, go, makeUser, shot, textOf, vmRow } from "../harness/app-page.ts";

const app = appSite("e2e-app-signin");
const { site } = app;
const { edge } = site;

describe("signing in", () => {
  it("signs in with the keyboard alone, says who and what role, and shows wrong passwords in words", async () => {
    const context = await site.browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    await page.goto(edge.url + "/");
    await shot(page, "signin");
    // The Username field has focus; Tab moves to Password; Enter submits.
    await page.getByLabel("Username").waitFor();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("signin-username");
    await page.keyboard.type(edge.username);
    await page.keyboard.press("Tab");
    await page.keyboard.type("not the password");
    await page.keyboard.press("Enter");
    expect(await textOf(page.getByRole("alert"), /Wrong username or password/)).toBeTruthy();
    await page.getByLabel("Password").fill(edge.password);
    await page.keyboard.press("Enter");
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    expect(await page.getByTestId("who").innerText()).toBe(`${edge.username} · administrator`);
    const links = await page.getByRole("navigation", { name: "Main" }).getByRole("link").allInnerTexts();
    expect(links).toEqual(["Consoles", "Sites", "Sessions", "Share links", "Users", "Groups", "Access requests", "API tokens", "Audit", "Recordings"]);
    await context.close();
  });

  it("a session that already answers (a cookie, or Cloudflare Access) skips the form; Sign out returns to it", async () => {
    const again = await app.context.newPage();
    await again.goto(edge.url + "/");
    await again.getByRole("button", { name: "Sign out" }).waitFor();
    expect(await again.getByLabel("Username").count()).toBe(0);
    await again.getByRole("button", { name: "Sign out" }).click();
    await again.getByRole("button", { name: "Sign in" }).waitFor();
    expect((await site.api.call("GET", "/api/session")).status).toBe(200); // only that browser's session ended
    await again.close();
  });

  it("a console address opened while signed out asks to sign in, then to confirm, then shows that console", async () => {
    await makeUser(site, "e2e-signin-operator", "operator");
    const context = await site.browser.newContext();
    const p = await context.newPage();
    await p.goto(`${edge.url}/open?site=${site.name}&hypervisor=lab&vm=desk`);
    await p.getByLabel("Username").fill("e2e-signin-operator");
    await p.getByLabel("Password").fill("a long password 1");
    await p.getByRole("button", { name: "Sign in" }).click();
    // Any site can send a person to the sign-in page with that address: the console asks first.
    await p.getByRole("button", { name: "Open console" }).click();
    await p.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    expect(new URL(p.url()).pathname).toBe("/console");
    await context.close();
  });
});

describe("at a phone's width", () => {
  it("nothing overflows sideways and every control is reachable", async () => {
    const context = await site.browser.newContext({ viewport: { width: 390, height: 844 } });
    const phone = await context.newPage();
    await context.request.post(`${edge.url}/api/session`, { data: { username: edge.username, password: edge.password } });
    await phone.goto(edge.url + "/#/consoles");
    const row = vmRow(phone, site.name);
    await row.waitFor();
    for (const name of ["Consoles", "Sessions", "Audit"]) {
      await go(phone, name);
      expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    }
    await go(phone, "Consoles");
    const open = vmRow(phone, site.name).getByRole("button", { name: "Open console" });
    await open.scrollIntoViewIfNeeded();
    const box = (await open.boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(390);
    await shot(phone, "phone");
    await context.close();
  });
});
