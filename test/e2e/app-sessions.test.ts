/// <reference lib="dom" />
/**
 * The operator app's Sessions and Share links screens, driven as a person would: a share link's
 * live console listed and ended, and a link revoked. Each test makes the link it needs.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { appSite, go, shot, textOf } from "../harness/app-page.ts";
import { waitFor } from "../harness/processes.ts";

const app = appSite("e2e-app-sessions", {
  vms: [
    { id: "desk", name: "Test desktop" },
    { id: "spare", name: "Spare desktop" },
  ],
});
const { site } = app;
const { edge, api: admin, name: SITE } = site;

/** A view-only link for one hour, made by the administrator. */
async function makeLink(vm: string): Promise<{ id: string; url: string }> {
  const made = await admin.call<{ id: string; url: string }>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm, ttlSeconds: 3600, viewOnly: true });
  expect(made.status).toBe(201);
  return made.body;
}

/** The link opened in a second browser with no account. */
async function openLink(url: string): Promise<Page> {
  const context = await site.browser.newContext({ viewport: { width: 900, height: 700 } });
  const viewer = await context.newPage();
  await viewer.goto(url);
  await viewer.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
  return viewer;
}

const linkRow = (p: Page, id: string) => p.getByRole("row").filter({ hasText: new RegExp(`Share link ${id} \\(made by admin\\)`) });

describe("the Sessions screen", () => {
  it("lists a link's console in a second browser with no account, with its mode, since when and bytes", async () => {
    const { page } = app;
    const link = await makeLink("desk");
    const viewer = await openLink(link.url);
    expect(await viewer.textContent("#badge")).toMatch(/^View only · link ends in (1 h 0 min|59:[0-5]\d)$/);

    await go(page, "Sessions");
    const text = await textOf(linkRow(page, link.id), /View only/);
    expect(text).toMatch(/desk[\s\S]*e2e-app-sessions \/ lab/);
    expect(text).toMatch(/\(\d+ s\)/);
    // Sent to the viewer: at least one full 800×600 frame, which is well over 100 KiB.
    expect(text).toMatch(/\d+(\.\d)? (KiB|MiB)/);
    await shot(page, "sessions");
    await viewer.context().close();
  });

  it("End session closes the viewer's console and their page says who ended it", async () => {
    const { page } = app;
    const link = await makeLink("desk");
    const viewer = await openLink(link.url);
    await go(page, "Sessions");
    const row = linkRow(page, link.id);
    await textOf(row, /View only/);
    await row.getByRole("button", { name: "End session" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("button", { name: "End it" }).click();
    await viewer.waitForSelector("body[data-state=closed]", { timeout: 10_000 });
    expect(await viewer.textContent("#notice")).toBe(`This console was ended by ${edge.username}.`);
    await waitFor("the session gone from the list", async () => ((await row.count()) === 0 ? true : undefined));
    await viewer.context().close();
  });
});

describe("the Share links screen", () => {
  it("Revoke ends the link: it moves to Ended and the link no longer opens", async () => {
    const { page } = app;
    const link = await makeLink("spare");
    const viewer = await openLink(link.url);
    await go(page, "Share links");
    const rows = page.getByRole("row").filter({ hasText: "e2e-app-sessions / lab" }).filter({ hasText: "spare" });
    const active = rows.filter({ hasText: "Active" });
    await active.waitFor();
    expect(await active.innerText()).toMatch(/spare[\s\S]*admin[\s\S]*View only[\s\S]*Active\s+\d/);
    await shot(page, "links");
    await active.getByRole("button", { name: "Revoke" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke it" }).click();
    const revoked = rows.filter({ hasText: "Revoked" });
    await revoked.waitFor();
    expect(await revoked.getByRole("button", { name: "Revoke" }).count()).toBe(0);
    // A fresh visit to the link is told so. (The secret is in the fragment: going to the same URL
    // from the link's own page would only move within the page, so leave it first.)
    await viewer.goto("about:blank");
    await viewer.goto(link.url);
    expect(await textOf(viewer.locator("body"), /revoked/i)).toBeTruthy();
    await viewer.context().close();
  });
});
