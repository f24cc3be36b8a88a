/// <reference lib="dom" />
/**
 * The operator app's Consoles screen, driven as a person would: every VM listed and filtered,
 * Open console in a new tab showing the desktop's real pixels, and the Share dialog.
 */
import { describe, expect, it } from "vitest";
import { appSite, go, shot, textOf, vmRow } from "../harness/app-page.ts";
import { readRed } from "../harness/console-page.ts";
import { waitFor } from "../harness/processes.ts";

const app = appSite("e2e-app-consoles");
const { site } = app;
const { edge, desktop, name: SITE } = site;

describe("the Consoles screen", () => {
  it("lists the VM, filters it, and opens its console in a new tab showing the desktop's pixels", async () => {
    const { page } = app;
    await go(page, "Consoles");
    const row = vmRow(page, SITE);
    await row.waitFor();
    expect(await row.innerText()).toMatch(/Test desktop[\s\S]*desk[\s\S]*e2e-app-consoles[\s\S]*lab[\s\S]*Unknown/);
    await page.getByLabel("Site", { exact: true }).selectOption(SITE);
    await page.getByLabel("Search").fill("no such vm");
    expect(await row.count()).toBe(0);
    expect(await textOf(page.getByRole("status").filter({ hasText: "VMs" }), /^0 of \d+ VMs/)).toBeTruthy();
    await page.getByLabel("Search").fill("test desk");
    await row.waitFor();
    await shot(page, "consoles");

    const [consolePage] = await Promise.all([app.context.waitForEvent("page"), row.getByRole("button", { name: "Open console" }).click()]);
    expect(await readRed(consolePage)).toMatchObject({ width: desktop.width, height: desktop.height });
    await consolePage.close();
  });

  it("shares view-only (the default) for 1 hour and shows the link once, with Copy and when it ends", async () => {
    const { page } = app;
    await go(page, "Consoles");
    await vmRow(page, SITE).getByRole("button", { name: "Share" }).click();
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
    const linkUrl = await field.inputValue();
    expect(linkUrl).toMatch(new RegExp(`^${edge.url}/l/e2e-app-consoles[/#]`));
    expect(await dialog.innerText()).toMatch(/View only\. Ends \S+/);
    await app.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: edge.url });
    await dialog.getByRole("button", { name: "Copy" }).click();
    expect(await textOf(dialog.getByRole("status"), /Copied/)).toBeTruthy();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(linkUrl);
    await shot(page, "share-link");
    await dialog.getByRole("button", { name: "Done" }).click();
    expect(await dialog.count()).toBe(0);
  });

  it("makes a one-time link with a PIN and a note: the PIN shown once beside the link, the note and uses in Share links", async () => {
    const { page } = app;
    await go(page, "Consoles");
    await vmRow(page, SITE).getByRole("button", { name: "Share" }).click();
    const dialog = page.getByRole("dialog", { name: "Share Test desktop" });
    await dialog.waitFor();
    await dialog.getByRole("checkbox", { name: "Require a PIN" }).check();
    await dialog.getByRole("checkbox", { name: "One-time link" }).check();
    await dialog.getByRole("textbox", { name: "Note" }).fill("for Ana, ticket 42");
    await dialog.getByRole("button", { name: "Create link" }).click();
    const pin = dialog.getByRole("textbox", { name: "Link PIN" });
    await pin.waitFor();
    expect(await pin.inputValue()).toMatch(/^\d{6}$/);
    const linkUrl = await dialog.getByRole("textbox", { name: "Share link", exact: true }).inputValue();
    expect(linkUrl).not.toContain(await pin.inputValue());
    await dialog.getByRole("button", { name: "Done" }).click();
    await go(page, "Share links");
    const row = page.getByRole("row").filter({ hasText: "for Ana, ticket 42" });
    await row.waitFor();
    expect(await row.innerText()).toMatch(/one-time: 0 of 1 used/);
    expect(await row.innerText()).toMatch(/PIN/);
  });

  it("the Share dialog works from the keyboard: focus moves into it, Escape closes it and focus returns", async () => {
    const { page } = app;
    await go(page, "Consoles");
    const share = vmRow(page, SITE).getByRole("button", { name: "Share" });
    await share.focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog", { name: "Share Test desktop" });
    await dialog.waitFor();
    expect(await dialog.evaluate((d) => d.contains(document.activeElement))).toBe(true);
    await page.keyboard.press("Escape");
    await waitFor("the dialog gone", async () => ((await dialog.count()) === 0 ? true : undefined));
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Share");
  });
});
