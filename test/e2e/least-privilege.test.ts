/// <reference lib="dom" />
/**
 * Issue 19 in Chromium, every control by role and accessible name: an admin grants a member `view`
 * on `web-*` for a short window; the member sees exactly those VMs, opens one view-only and cannot
 * share; the window's end closes the console with the reason on the page. The member asks for
 * `control` on a VM; the admin approves in the app; the member opens it with full control; a
 * denied request gives nothing. An auditor reads the audit trail and sessions and opens nothing.
 */
import type { BrowserContext, Locator, Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { ApiClient } from "../harness/api.ts";
import { e2eSite } from "../harness/e2e-site.ts";
import { waitFor } from "../harness/processes.ts";

const WINDOW_S = 40;
const site = e2eSite("e2e-least", {
  lab: () => ["web-1", "web-2", "db-1"].map((id) => ({ id, name: id, port: site.desktop.port })),
  waitForVms: true,
  browser: true,
});
const SITE = site.name;
const edge = site.edge;
let adminPage: Page;
let member: Page;
let memberContext: BrowserContext;
let webConsole: Page;
let approvedConsole: Page;
let windowEnds = 0;

const MEMBER = { username: "mia-member", password: "mia member password" };
const AUDITOR = { username: "aldo-auditor", password: "aldo auditor password" };

async function signIn(p: Page, who: { username: string; password: string }): Promise<void> {
  await p.goto(edge.url + "/");
  await p.getByLabel("Username").fill(who.username);
  await p.getByLabel("Password").fill(who.password);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.getByRole("button", { name: "Sign out" }).waitFor();
}

function nav(p: Page, name: string): Locator {
  return p.getByRole("navigation", { name: "Main" }).getByRole("link", { name });
}

async function go(p: Page, name: string): Promise<void> {
  await nav(p, name).click();
  await p.getByRole("heading", { level: 1, name }).waitFor();
}

function vmRow(p: Page, vm: string): Locator {
  return p.getByRole("row").filter({ has: p.getByRole("rowheader", { name: vm }) });
}

/** The VMs the Consoles screen lists, loaded afresh. */
async function listedVms(p: Page): Promise<string[]> {
  await p.goto(`${edge.url}/#/consoles`);
  await p.reload();
  await p.getByRole("heading", { level: 1, name: "Consoles" }).waitFor();
  return waitFor("the VM list", async () => {
    const status = await p.getByRole("status").filter({ hasText: /VMs?\b/ }).count();
    if (!status) return undefined;
    return (await p.getByRole("rowheader").allInnerTexts()).map((t) => t.split("\n")[0]!.trim()).sort();
  });
}

beforeAll(async () => {
  for (const [who, role] of [
    [MEMBER, "member"],
    [AUDITOR, "auditor"],
  ] as const) {
    expect((await site.api.call("POST", "/api/users", { ...who, role })).status).toBe(201);
  }
  adminPage = await (await site.browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
  memberContext = await site.browser.newContext({ viewport: { width: 1200, height: 900 } });
  member = await memberContext.newPage();
  await signIn(adminPage, { username: edge.username, password: edge.password });
});

describe("least privilege", () => {
  it("an admin grants the member view-only on web-* until a time, in the app", async () => {
    await go(adminPage, "Users");
    const row = adminPage.getByRole("row").filter({ hasText: MEMBER.username });
    await row.getByRole("button", { name: "Access" }).click();
    const dialog = adminPage.getByRole("dialog", { name: `Access of ${MEMBER.username}` });
    await dialog.getByRole("button", { name: "Grant access" }).click();
    const form = dialog.getByRole("form", { name: "Grant access" });
    await form.getByLabel("Site").selectOption(SITE);
    await form.getByLabel("VM").fill("web-*");
    await form.getByLabel("Level").selectOption("view");
    windowEnds = Date.now() + WINDOW_S * 1000;
    // datetime-local takes the browser's local time, to the second.
    const local = await adminPage.evaluate((ms) => {
      const d = new Date(ms);
      const p = (n: number) => String(n).padStart(2, "0");
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    }, windowEnds);
    await form.getByLabel("Until").fill(local);
    await form.getByRole("button", { name: "Grant", exact: true }).click();
    await dialog.getByText(/View only · e2e-least: VMs named web-\* · until/).waitFor();
    await dialog.getByRole("button", { name: "Close" }).click();
  });

  it("the member sees exactly web-*, opens web-1 view-only, and cannot share", async () => {
    await signIn(member, MEMBER);
    expect(await listedVms(member)).toEqual(["web-1", "web-2"]);
    const row = vmRow(member, "web-1");
    expect(await row.innerText()).toMatch(/View only[\s\S]*until/);
    expect(await row.getByRole("button", { name: "Share" }).count()).toBe(0);
    const [page] = await Promise.all([memberContext.waitForEvent("page"), row.getByRole("button", { name: "Open console" }).click()]);
    webConsole = page;
    await webConsole.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    expect(await webConsole.textContent("#badge")).toMatch(/View only/);
    // Not through the API either.
    const api = new ApiClient(edge.url);
    await api.signIn(MEMBER.username, MEMBER.password);
    expect((await api.call("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "web-1" })).status).toBe(403);
    expect((await api.call("POST", "/api/consoles", { site: SITE, hypervisor: "lab", vm: "db-1" })).status).toBe(404);
  });

  it("the member asks for full control of web-2; the admin sees the count and approves; the member opens it with full control", async () => {
    await member.bringToFront();
    await vmRow(member, "web-2").getByRole("button", { name: "Request access" }).click();
    const ask = member.getByRole("dialog", { name: "Request access to web-2" });
    await ask.getByLabel("Level").selectOption("control");
    await ask.getByLabel("Minutes").fill("30");
    await ask.getByLabel("Reason").fill("deploying the hotfix");
    await ask.getByRole("button", { name: "Send request" }).click();
    await ask.getByText("Request sent").waitFor();
    await ask.getByRole("button", { name: "Done" }).click();

    await adminPage.reload();
    await waitFor("the pending count", async () => ((await adminPage.getByTestId("pending-requests").innerText().catch(() => "")).trim() === "1" ? true : undefined));
    await go(adminPage, "Access requests");
    const request = adminPage.getByRole("row").filter({ hasText: "deploying the hotfix" });
    await request.getByRole("button", { name: "Approve" }).click();
    await adminPage.getByRole("row").filter({ hasText: "Approved" }).waitFor();

    expect(await listedVms(member)).toEqual(["web-1", "web-2"]);
    const row = vmRow(member, "web-2");
    await waitFor("full control on web-2", async () => ((await row.innerText()).includes("Full control") ? true : undefined));
    const [page] = await Promise.all([memberContext.waitForEvent("page"), row.getByRole("button", { name: "Open console" }).click()]);
    await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    expect(await page.textContent("#badge")).not.toMatch(/View only/);
    approvedConsole = page;
  });

  it("a denied request gives nothing", async () => {
    const api = new ApiClient(edge.url);
    await api.signIn(MEMBER.username, MEMBER.password);
    const asked = await api.call<{ id: string }>("POST", "/api/access-requests", { site: SITE, hypervisor: "lab", vm: "db-1", level: "control", minutes: 10, reason: "curious" });
    expect(asked.status).toBe(201);
    await adminPage.reload();
    await go(adminPage, "Access requests");
    await adminPage.getByRole("row").filter({ hasText: "curious" }).getByRole("button", { name: "Deny" }).click();
    await adminPage.getByRole("row").filter({ hasText: "Denied" }).waitFor();
    expect((await api.call("POST", "/api/consoles", { site: SITE, hypervisor: "lab", vm: "db-1" })).status).toBe(404);
    expect(await listedVms(member)).not.toContain("db-1");
  });

  it("at the end of the window web-1's console closes and says why; web-2 (approved) stays", async () => {
    // The page's own event, not a sleep: the console's state turns to closed.
    await webConsole.waitForSelector("body[data-state=closed]", { timeout: Math.max(0, windowEnds - Date.now()) + 15_000 });
    const at = new Date(windowEnds).toISOString().slice(11, 16);
    expect(await webConsole.textContent("#notice")).toMatch(new RegExp(`^Your access to web-1 ended at (${at}|\\d\\d:\\d\\d) UTC\\.$`));
    // Not before the end (the browser's clock and the edge's are this machine's). How soon after is
    // no wall-clock assertion here: the Workers-pool test checks the alarm is set for exactly `until`.
    expect(Date.now()).toBeGreaterThanOrEqual(windowEnds - 1000);
    expect(await approvedConsole.evaluate(() => document.body.dataset.state)).toBe("connected");
    expect(await listedVms(member)).toEqual(["web-2"]);
  });

  it("an admin makes a group in the app, adds the member, grants the group, and deletes it", async () => {
    await go(adminPage, "Groups");
    await adminPage.getByRole("button", { name: "New group" }).click();
    const form = adminPage.getByRole("form", { name: "New group" });
    await form.getByLabel("Group name").fill("oncall");
    await form.getByRole("button", { name: "Create", exact: true }).click();
    const card = adminPage.getByRole("article", { name: "Group oncall" });
    await card.getByLabel("Member", { exact: true }).fill(MEMBER.username);
    await card.getByRole("button", { name: "Add member" }).click();
    await card.getByText(`Members: ${MEMBER.username}`).waitFor();
    await card.getByRole("button", { name: "Grant access" }).click();
    const grant = card.getByRole("form", { name: "Grant access" });
    await grant.getByLabel("Site").selectOption(SITE);
    await grant.getByLabel("VM").fill("db-1");
    await grant.getByRole("button", { name: "Grant", exact: true }).click();
    await card.getByText(/View only · e2e-least: VM db-1 on lab · no end/).waitFor();
    expect(await listedVms(member)).toEqual(["db-1", "web-2"]);
    await card.getByRole("button", { name: "Delete group" }).click();
    await adminPage.getByRole("dialog", { name: "Delete oncall?" }).getByRole("button", { name: "Delete group" }).click();
    await waitFor("the group gone", async () => ((await card.count()) === 0 ? true : undefined));
    expect(await listedVms(member)).toEqual(["web-2"]);
  });

  it("an auditor reads the audit trail and the live sessions but cannot open a console", async () => {
    const context = await site.browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    await signIn(page, AUDITOR);
    const links = await page.getByRole("navigation", { name: "Main" }).getByRole("link").allInnerTexts();
    expect(links).not.toContain("Consoles");
    expect(links).toContain("Audit");
    expect(links).toContain("Recordings");
    await go(page, "Audit");
    await page.getByRole("cell", { name: /grant\.created/ }).first().waitFor();
    await go(page, "Sessions");
    await page.getByRole("row").filter({ hasText: MEMBER.username }).first().waitFor();
    const api = new ApiClient(edge.url);
    await api.signIn(AUDITOR.username, AUDITOR.password);
    expect((await api.call("POST", "/api/consoles", { site: SITE, hypervisor: "lab", vm: "web-2" })).status).toBe(403);
    await context.close();
  });
});
