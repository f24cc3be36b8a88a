/// <reference lib="dom" />
/**
 * The operator app at `/`, driven as a person would: every control found by its role and
 * accessible name (the names in the contract's "Web app" section), on the real edge, with a real
 * connector started from the token the app shows, and a real Xvnc desktop behind it.
 *
 * With PORTHOLE_SCREENSHOTS=<dir> it also saves a screenshot of each main screen there
 * (docs/screenshots is what the README shows).
 */
import { mkdirSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient } from "../harness/api.ts";
import { launchBrowser } from "../harness/browser.ts";
import { readRed } from "../harness/console-page.ts";
import { type RunningConnector, startConnector } from "../harness/connector.ts";
import { waitFor } from "../harness/processes.ts";

const edge = inject("edge");
const desktop = inject("desktop");
const SITE = "e2e-app";
const SHOTS = process.env.PORTHOLE_SCREENSHOTS;
const admin = new ApiClient(edge.url);
let browser: Browser;
let adminContext: BrowserContext;
let page: Page;
let connector: RunningConnector | undefined;
let connectorToken = "";

function connectorConfig(token: string) {
  return {
    edge: edge.url,
    token,
    hypervisors: [
      { name: "lab", type: "vnc", vms: [{ id: "desk", name: "Test desktop", address: `127.0.0.1:${desktop.port}` }] },
      // Nothing listens there: the Sites screen must say so in words.
      { name: "gone", type: "xenserver", url: "https://127.0.10.9", username: "root", password: "secret", tls: { insecure: true } },
    ],
  };
}

async function shot(p: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

function nav(p: Page, name: string): Locator {
  return p.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true });
}

async function go(p: Page, name: string): Promise<void> {
  await nav(p, name).click();
  await p.getByRole("heading", { level: 1, name }).waitFor();
}

/** Waits until the locator's text matches (Playwright-core has no expect of its own). */
async function textOf(locator: Locator, pattern: RegExp, timeout = 20_000): Promise<string> {
  return waitFor(`text ${pattern}`, async () => {
    const text = (await locator.count()) > 0 ? await locator.first().innerText() : "";
    return pattern.test(text) ? text : undefined;
  }, timeout);
}

async function signIn(p: Page, username: string, password: string): Promise<void> {
  await p.goto(edge.url + "/");
  await p.getByLabel("Username").fill(username);
  await p.getByLabel("Password").fill(password);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.getByRole("button", { name: "Sign out" }).waitFor();
}

function siteRegion(p: Page, site = SITE): Locator {
  return p.getByRole("region", { name: `Site ${site}`, exact: true });
}

function vmRow(p: Page, vm = "Test desktop"): Locator {
  return p.getByRole("row").filter({ hasText: vm }).filter({ hasText: SITE });
}

beforeAll(async () => {
  await admin.signIn(edge.username, edge.password);
  browser = await launchBrowser();
  adminContext = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  page = await adminContext.newPage();
});

afterAll(async () => {
  await Promise.allSettled([connector?.stop(), browser?.close()]);
});

describe("the operator app", () => {
  it("signs in with the keyboard alone, says who and what role, and shows wrong passwords in words", async () => {
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
    expect(links).toEqual(["Consoles", "Sites", "Sessions", "Share links", "Users", "Groups", "Access requests", "API tokens", "Audit"]);
  });

  it("a session that already answers (a cookie, or Cloudflare Access) skips the form; Sign out returns to it", async () => {
    const again = await adminContext.newPage();
    await again.goto(edge.url + "/");
    await again.getByRole("button", { name: "Sign out" }).waitFor();
    expect(await again.getByLabel("Username").count()).toBe(0);
    await again.getByRole("button", { name: "Sign out" }).click();
    await again.getByRole("button", { name: "Sign in" }).waitFor();
    expect((await admin.call("GET", "/api/session")).status).toBe(200); // only that browser's session ended
    await again.close();
    await signIn(page, edge.username, edge.password);
  });

  it("refuses a bad site name where it was typed, then creates a site and shows its token once with the commands", async () => {
    await go(page, "Sites");
    await page.getByRole("button", { name: "New site" }).click();
    await page.getByLabel("Site name").fill("Not A Name");
    await page.getByRole("button", { name: "Create", exact: true }).click();
    const form = page.getByRole("form", { name: "New site" });
    expect(await textOf(form.getByRole("alert"), /lowercase/)).toMatch(/name: use 1-63 lowercase letters/);

    await page.getByLabel("Site name").fill(SITE);
    await page.getByRole("button", { name: "Create", exact: true }).click();
    const field = page.getByRole("textbox", { name: "Connector token", exact: true });
    await field.waitFor();
    expect(await field.getAttribute("readonly")).not.toBeNull();
    connectorToken = await field.inputValue();
    expect(connectorToken).toMatch(/^pht1\.e2e-app\.[A-Za-z0-9_-]{43}$/);
    const config = await page.getByRole("textbox", { name: "porthole.yaml" }).inputValue();
    expect(config).toContain(`edge: ${edge.url}\ntoken: "${connectorToken}"`);
    const body = await page.locator("main").innerText();
    expect(body).toContain("node porthole.mjs connector --config porthole.yaml");
    expect(body).toContain("porthole.mjs install --config porthole.yaml");
    expect(body).toContain("PORTHOLE_CONNECTOR_TOKEN");

    // The same name again is refused, in words, in the form.
    await page.getByRole("button", { name: "New site" }).click();
    await page.getByLabel("Site name").fill(SITE);
    await page.getByRole("button", { name: "Create", exact: true }).click();
    expect(await textOf(page.getByRole("form", { name: "New site" }).getByRole("alert"), /exists/)).toMatch(/A site named e2e-app already exists/);
    await page.getByRole("button", { name: "Cancel" }).click();
  });

  it("sees the connector started with that token online, with hostname, version, since when and each hypervisor's state", async () => {
    expect(await textOf(siteRegion(page), /No connector online/)).toBeTruthy();
    connector = await startConnector(connectorConfig(connectorToken));
    const region = siteRegion(page);
    const text = await textOf(region, /gone \(XenServer pool\): unreachable: (?!not contacted yet).+/, 30_000);
    expect(text).toContain("1 connector online");
    expect(text).toContain(hostname());
    expect(text).toMatch(/Version\s+\d+\.\d+\.\d+ \(porthole-connector\/\d+\.\d+\.\d+\)/);
    expect(text).toMatch(/Online since\s+\S.*\(\d+ s\)/);
    expect(text).toContain("lab (VNC servers): reachable, 1 VM");
    await shot(page, "sites");
    await page.getByRole("button", { name: "Done" }).click();
    expect(await page.getByRole("textbox", { name: "Connector token", exact: true }).count()).toBe(0);
  });

  it("lists the VM under Consoles, filters it, and opens its console in a new tab showing the desktop's pixels", async () => {
    await go(page, "Consoles");
    const row = vmRow(page);
    await row.waitFor();
    expect(await row.innerText()).toMatch(/Test desktop[\s\S]*desk[\s\S]*e2e-app[\s\S]*lab[\s\S]*Unknown/);
    await page.getByLabel("Site", { exact: true }).selectOption(SITE);
    await page.getByLabel("Search").fill("no such vm");
    expect(await row.count()).toBe(0);
    expect(await textOf(page.getByRole("status").filter({ hasText: "VMs" }), /^0 of \d+ VMs/)).toBeTruthy();
    await page.getByLabel("Search").fill("test desk");
    await row.waitFor();
    await shot(page, "consoles");

    const [consolePage] = await Promise.all([adminContext.waitForEvent("page"), row.getByRole("button", { name: "Open console" }).click()]);
    expect(await readRed(consolePage)).toMatchObject({ width: desktop.width, height: desktop.height });
    await consolePage.close();
  });

  let linkUrl = "";
  let viewerContext: BrowserContext;
  let viewer: Page;

  it("shares view-only (the default) for 1 hour and shows the link once, with Copy and when it ends", async () => {
    await vmRow(page).getByRole("button", { name: "Share" }).click();
    const dialog = page.getByRole("dialog", { name: "Share Test desktop" });
    await dialog.waitFor();
    expect(await dialog.getByRole("checkbox", { name: "View only" }).isChecked()).toBe(true);
    const expiry = dialog.getByLabel("Expires in");
    expect(await expiry.locator("option").allInnerTexts()).toEqual(["15 minutes", "1 hour", "8 hours", "1 day", "Custom…"]);
    // A custom expiry beyond the edge's maximum is refused in the dialog, in words.
    await expiry.selectOption("custom");
    await dialog.getByLabel("Custom expiry in minutes").fill("100000");
    await dialog.getByRole("button", { name: "Create link" }).click();
    expect(await textOf(dialog.getByRole("alert"), /at most/)).toMatch(/at most 1440 minutes/);
    await expiry.selectOption({ label: "1 hour" });
    await shot(page, "share");
    await dialog.getByRole("button", { name: "Create link" }).click();
    const field = dialog.getByRole("textbox", { name: "Share link", exact: true });
    await field.waitFor();
    expect(await field.getAttribute("readonly")).not.toBeNull();
    linkUrl = await field.inputValue();
    expect(linkUrl).toMatch(new RegExp(`^${edge.url}/l/e2e-app[/#]`));
    expect(await dialog.innerText()).toMatch(/View only\. Ends \S+/);
    await adminContext.grantPermissions(["clipboard-read", "clipboard-write"], { origin: edge.url });
    await dialog.getByRole("button", { name: "Copy" }).click();
    expect(await textOf(dialog.getByRole("status"), /Copied/)).toBeTruthy();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(linkUrl);
    await shot(page, "share-link");
    await dialog.getByRole("button", { name: "Done" }).click();
    expect(await dialog.count()).toBe(0);
  });

  it("the link opens in a second browser with no account, and the session is listed with its mode, since when and bytes", async () => {
    viewerContext = await browser.newContext({ viewport: { width: 900, height: 700 } });
    viewer = await viewerContext.newPage();
    await viewer.goto(linkUrl);
    await viewer.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    expect(await viewer.textContent("#badge")).toMatch(/^View only · link ends in (1 h 0 min|59:[0-5]\d)$/);

    await go(page, "Sessions");
    const row = page.getByRole("row").filter({ hasText: /Share link \S+ \(made by admin\)/ });
    const text = await textOf(row, /View only/);
    expect(text).toMatch(/desk[\s\S]*e2e-app \/ lab/);
    expect(text).toMatch(/\(\d+ s\)/);
    // Sent to the viewer: at least one full 800×600 frame, which is well over 100 KiB.
    expect(text).toMatch(/\d+(\.\d)? (KiB|MiB)/);
    await shot(page, "sessions");
  });

  it("End session closes the viewer's console and their page says who ended it", async () => {
    const row = page.getByRole("row").filter({ hasText: /Share link \S+ \(made by admin\)/ });
    await row.getByRole("button", { name: "End session" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("button", { name: "End it" }).click();
    await viewer.waitForSelector("body[data-state=closed]", { timeout: 10_000 });
    expect(await viewer.textContent("#notice")).toBe(`This console was ended by ${edge.username}.`);
    await waitFor("the session gone from the list", async () => ((await row.count()) === 0 ? true : undefined));
  });

  it("Revoke ends the link: it moves to Ended and the link no longer opens", async () => {
    await go(page, "Share links");
    const active = page.getByRole("row").filter({ hasText: "e2e-app / lab" }).filter({ hasText: "Active" });
    await active.waitFor();
    expect(await active.innerText()).toMatch(/desk[\s\S]*admin[\s\S]*View only[\s\S]*Active\s+0/);
    await shot(page, "links");
    await active.getByRole("button", { name: "Revoke" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke it" }).click();
    const revoked = page.getByRole("row").filter({ hasText: "e2e-app / lab" }).filter({ hasText: "Revoked" });
    await revoked.waitFor();
    expect(await revoked.getByRole("button", { name: "Revoke" }).count()).toBe(0);
    // A fresh visit to the link is told so. (The secret is in the fragment: going to the same URL
    // from the link's own page would only move within the page, so leave it first.)
    await viewer.goto("about:blank");
    await viewer.goto(linkUrl);
    expect(await textOf(viewer.locator("body"), /revoked/i)).toBeTruthy();
    await viewerContext.close();
  });

  it("the Share dialog works from the keyboard: focus moves into it, Escape closes it and focus returns", async () => {
    await go(page, "Consoles");
    const share = vmRow(page).getByRole("button", { name: "Share" });
    await share.focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog", { name: "Share Test desktop" });
    await dialog.waitFor();
    expect(await dialog.evaluate((d) => d.contains(document.activeElement))).toBe(true);
    await page.keyboard.press("Escape");
    await waitFor("the dialog gone", async () => ((await dialog.count()) === 0 ? true : undefined));
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Share");
  });

  it("creates a user with each role; each sees what the role allows, and a refusal shows in the form", async () => {
    await go(page, "Users");
    const password = "a long password 1";
    for (const role of ["viewer", "operator", "admin"] as const) {
      await page.getByRole("button", { name: "New user" }).click();
      const form = page.getByRole("form", { name: "New user" });
      await form.getByLabel("Username", { exact: true }).fill(`e2e-${role}`);
      await form.getByLabel("Password", { exact: true }).fill(password);
      await form.getByLabel("Role", { exact: true }).selectOption(role);
      await form.getByRole("button", { name: "Create", exact: true }).click();
      // The new row, or the form's own words if the edge refused (a failure then says why).
      await waitFor(`e2e-${role} listed`, async () => {
        if ((await page.getByRole("row").filter({ hasText: `e2e-${role}` }).count()) > 0) return true;
        const refusal = form.getByRole("alert");
        if ((await refusal.count()) > 0 && (await refusal.innerText()).trim()) throw new Error(`creating e2e-${role}: ${await refusal.innerText()}`);
        return undefined;
      });
    }
    // A name that exists is refused where it was typed.
    await page.getByRole("button", { name: "New user" }).click();
    const form = page.getByRole("form", { name: "New user" });
    await form.getByLabel("Username", { exact: true }).fill("e2e-viewer");
    await form.getByLabel("Password", { exact: true }).fill(password);
    await form.getByRole("button", { name: "Create", exact: true }).click();
    expect(await textOf(form.getByRole("alert"), /exists/)).toMatch(/A user named e2e-viewer already exists/);
    await form.getByRole("button", { name: "Cancel" }).click();
    await shot(page, "users");

    const expected = {
      viewer: ["Consoles", "Sessions", "API tokens"],
      operator: ["Consoles", "Sessions", "Share links", "API tokens"],
      admin: ["Consoles", "Sites", "Sessions", "Share links", "Users", "Groups", "Access requests", "API tokens", "Audit"],
    };
    for (const role of ["viewer", "operator", "admin"] as const) {
      const context = await browser.newContext();
      const p = await context.newPage();
      await signIn(p, `e2e-${role}`, password);
      expect(await p.getByTestId("who").innerText()).toBe(`e2e-${role} · ${role === "admin" ? "administrator" : role}`);
      expect(await p.getByRole("navigation", { name: "Main" }).getByRole("link").allInnerTexts()).toEqual(expected[role]);
      const row = vmRow(p);
      await row.waitFor();
      expect(await row.getByRole("button", { name: "Open console" }).count()).toBe(1);
      expect(await row.getByRole("button", { name: "Share" }).count()).toBe(role === "viewer" ? 0 : 1);
      // A screen the role may not use is not reachable by address either: its first screen shows.
      await p.goto(edge.url + "/#/audit");
      expect(await textOf(p.getByRole("heading", { level: 1 }), role === "admin" ? /^Audit$/ : /^Consoles$/)).toBeTruthy();
      await context.close();
    }

    // Delete asks first; the deleted user can no longer sign in.
    const doomed = page.getByRole("row").filter({ hasText: "e2e-admin" });
    await doomed.getByRole("button", { name: "Delete", exact: true }).click();
    await page.getByRole("dialog", { name: "Delete e2e-admin?" }).getByRole("button", { name: "Delete user" }).click();
    await waitFor("the user gone", async () => ((await doomed.count()) === 0 ? true : undefined));
    const gone = await fetch(`${edge.url}/api/session`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username: "e2e-admin", password }) });
    expect(gone.status).toBe(401);
  });

  it("a console address opened while signed out asks to sign in, then to confirm, then shows that console", async () => {
    const context = await browser.newContext();
    const p = await context.newPage();
    await p.goto(`${edge.url}/open?site=${SITE}&hypervisor=lab&vm=desk`);
    await p.getByLabel("Username").fill("e2e-operator");
    await p.getByLabel("Password").fill("a long password 1");
    await p.getByRole("button", { name: "Sign in" }).click();
    // Any site can send a person to the sign-in page with that address: the console asks first.
    await p.getByRole("button", { name: "Open console" }).click();
    await p.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    expect(new URL(p.url()).pathname).toBe("/console");
    await context.close();
  });

  it("every user makes and revokes their own API tokens; a new token is shown once and works", async () => {
    await go(page, "API tokens");
    await page.getByLabel("Token name").fill("e2e script");
    await page.getByLabel("Expires after").selectOption("7");
    await page.getByRole("button", { name: "Create token" }).click();
    const field = page.getByRole("textbox", { name: "API token", exact: true });
    await field.waitFor();
    const token = await field.inputValue();
    const me = await fetch(`${edge.url}/api/session`, { headers: { Authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    await page.getByRole("button", { name: "Done" }).click();
    expect(await field.count()).toBe(0);
    const row = page.getByRole("row").filter({ hasText: "e2e script" });
    // Expires in 7 days; used once just now (the list is read again after a revoke of another).
    const listed = (await fetch(`${edge.url}/api/tokens`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.json())) as { name: string; expiresAt: string; lastUsedAt: string }[];
    const mine = listed.find((t) => t.name === "e2e script")!;
    expect(Date.parse(mine.expiresAt) - Date.now()).toBeGreaterThan(6 * 86400_000);
    expect(mine.lastUsedAt).not.toBeNull();
    expect(await row.locator('[data-label="Expires"]').innerText()).not.toBe("Never");
    await shot(page, "tokens");
    await row.getByRole("button", { name: "Revoke" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke it" }).click();
    await waitFor("the token gone", async () => ((await row.count()) === 0 ? true : undefined));
    expect((await fetch(`${edge.url}/api/session`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(401);
  });

  it("pages the audit newest first, filters by type and actor, and exports the current filter as CSV", async () => {
    // 60 events of one kind: more than one page (50).
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push((await admin.call<{ id: string }>("POST", "/api/tokens", { name: `audit-${i}` })).body.id);
    await waitFor("audit rows written", async () => {
      const rows = (await admin.call<unknown[]>("GET", "/api/audit?type=token.created&limit=200")).body;
      return rows.length >= 60 ? true : undefined;
    });
    await go(page, "Audit");
    await page.getByLabel("Type").fill("token.created");
    await page.getByLabel("Actor").fill(edge.username);
    await page.getByRole("button", { name: "Apply filters" }).click();
    const rows = page.getByRole("table").getByRole("row");
    const ours = (r: string) => /token\.created\s+admin/.test(r);
    // Rows of the filter asked for (the unfiltered page may still be on screen for a moment).
    const first = await waitFor("a full filtered first page", async () => {
      const t = await rows.allInnerTexts();
      return t.length === 51 && t.slice(1).every(ours) ? t : undefined;
    });
    // Newest first: the last token made is at the top.
    expect(first[1]).toContain("name: audit-59");
    await page.getByRole("button", { name: "Next page" }).click();
    await textOf(page.getByRole("status").filter({ hasText: "Page" }), /Page 2/);
    const second = await waitFor("the second page", async () => {
      const t = await rows.allInnerTexts();
      return t.length > 1 && t.length < 51 && t.slice(1).every(ours) ? t : undefined;
    });
    expect(second.length).toBeGreaterThan(1 + 10); // 60 of ours + the earlier tokens - 50
    expect(second.slice(1).some((r) => first.includes(r))).toBe(false);
    expect(second.join("\n")).toContain("name: audit-0");
    await page.getByRole("button", { name: "Previous page" }).click();
    await waitFor("back to the first page", async () => ((await rows.allInnerTexts())[1] === first[1] ? true : undefined));

    // A time range that ends before any of this happened shows nothing.
    await page.getByLabel("Until").fill("2001-01-01T00:00");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.getByText("No events match.").waitFor();
    await page.getByLabel("Until").fill("");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await waitFor("the filter back", async () => ((await rows.count()) === 51 ? true : undefined));

    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
    const csv = readFileSync((await download.path())!, "utf8").trim().split("\r\n");
    expect(csv[0]).toBe('"time","type","actor","site","detail"');
    expect(csv.length - 1).toBe(first.length - 1 + second.length - 1);
    expect(csv.slice(1).every((l) => l.includes('"token.created","admin"'))).toBe(true);
    for (const id of ids) await admin.call("DELETE", `/api/tokens/${id}`);

    if (SHOTS) {
      await page.getByLabel("Type").fill("console");
      await page.getByLabel("Actor").fill("");
      await page.getByRole("button", { name: "Apply filters" }).click();
      await waitFor("console events", async () => ((await rows.allInnerTexts()).slice(1).every((r) => r.includes("console.")) ? true : undefined));
      await page.screenshot({ path: `${SHOTS}/audit.png` });
    }
  });

  it("works at a phone's width: nothing overflows sideways and every control is reachable", async () => {
    const phone = await adminContext.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(edge.url + "/#/consoles");
    const row = vmRow(phone);
    await row.waitFor();
    for (const name of ["Consoles", "Sessions", "Audit"]) {
      await go(phone, name);
      expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    }
    await go(phone, "Consoles");
    const open = vmRow(phone).getByRole("button", { name: "Open console" });
    await open.scrollIntoViewIfNeeded();
    const box = (await open.boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(390);
    await shot(phone, "phone");
    await phone.close();
  });
});

/**
 * Steps on routes another branch adds (PATCH /api/users/:username, POST /api/sites/:site/token,
 * DELETE /api/sites/:site, connectors' `address`): written to the contract, run after the merge.
 */
describe("the operator app, on the users and sites routes", () => {
  it("shows each connector's address", async () => {
    await go(page, "Sites");
    const text = await textOf(siteRegion(page), /Address/);
    expect(text).toMatch(/Address\s+(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)/);
  });

  it("changes a user's role and disables them; the user's next request is refused", async () => {
    await go(page, "Users");
    const row = page.getByRole("row").filter({ hasText: "e2e-viewer" });
    await row.getByRole("combobox", { name: "Role of e2e-viewer" }).selectOption("operator");
    await waitFor("role saved", async () => {
      const users = (await admin.call<{ username: string; role: string }[]>("GET", "/api/users")).body;
      return users.find((u) => u.username === "e2e-viewer")?.role === "operator" ? true : undefined;
    });
    const other = new ApiClient(edge.url);
    await other.signIn("e2e-viewer", "a long password 1");
    expect((await other.call("GET", "/api/links")).status).toBe(200);
    await row.getByRole("button", { name: "Disable" }).click();
    await textOf(row, /Disabled/);
    expect(await row.getByRole("button", { name: "Enable" }).count()).toBe(1);
    expect((await other.call("GET", "/api/session")).status).toBe(401);

    await row.getByRole("button", { name: "Delete", exact: true }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete user" }).click();
    await waitFor("user gone", async () => ((await row.count()) === 0 ? true : undefined));
  });

  it("Set password: the old password no longer signs in, the new one does", async () => {
    await go(page, "Users");
    const row = page.getByRole("row").filter({ hasText: "e2e-operator" });
    await row.getByRole("button", { name: "Set password" }).click();
    const dialog = page.getByRole("dialog", { name: "New password for e2e-operator" });
    await dialog.getByLabel("New password").fill("short");
    await dialog.getByRole("button", { name: "Save password" }).click();
    expect(await dialog.isVisible()).toBe(true); // the browser refuses fewer than 12 characters
    await dialog.getByLabel("New password").fill("another long password 2");
    await dialog.getByRole("button", { name: "Save password" }).click();
    await textOf(row.getByRole("status"), /Password changed/);
    const signIn = (password: string) =>
      fetch(`${edge.url}/api/session`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username: "e2e-operator", password }) });
    expect((await signIn("a long password 1")).status).toBe(401);
    expect((await signIn("another long password 2")).status).toBe(200);
  });

  it("Rotate token shows a new token once; the connector on the old one is dropped and one on the new one comes online", async () => {
    await go(page, "Sites");
    await siteRegion(page).getByRole("button", { name: "Rotate token" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Rotate" }).click();
    const field = page.getByRole("textbox", { name: "Connector token", exact: true });
    await field.waitFor();
    const fresh = await field.inputValue();
    expect(fresh).toMatch(/^pht1\.e2e-app\./);
    expect(fresh).not.toBe(connectorToken);
    await textOf(siteRegion(page), /No connector online/);
    await connector?.stop();
    connector = await startConnector(connectorConfig(fresh));
    await textOf(siteRegion(page), /1 connector online/);
  });

  it("Delete site asks first, then the site and its consoles are gone", async () => {
    await go(page, "Sites");
    await siteRegion(page).getByRole("button", { name: "Delete site" }).click();
    const dialog = page.getByRole("dialog", { name: `Delete site ${SITE}?` });
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect(await siteRegion(page).count()).toBe(1);
    await siteRegion(page).getByRole("button", { name: "Delete site" }).click();
    await dialog.getByRole("button", { name: "Delete", exact: true }).click();
    await waitFor("site gone", async () => ((await siteRegion(page).count()) === 0 ? true : undefined));
    const sites = (await admin.call<{ name: string }[]>("GET", "/api/sites")).body;
    expect(sites.map((s) => s.name)).not.toContain(SITE);
  });
});
