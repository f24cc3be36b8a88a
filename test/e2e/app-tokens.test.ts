/// <reference lib="dom" />
/**
 * The operator app's API tokens and Audit screens, driven as a person would: a token made, used
 * and revoked; the audit paged newest first, filtered, and exported as CSV.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { appSite, go, SHOTS, shot, textOf } from "../harness/app-page.ts";
import { waitFor } from "../harness/processes.ts";

const app = appSite("e2e-app-tokens", { connector: false });
const { site } = app;
const { edge, api: admin } = site;

describe("the API tokens screen", () => {
  it("every user makes and revokes their own API tokens; a new token is shown once and works", async () => {
    const { page } = app;
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
});

describe("the Audit screen", () => {
  it("pages the audit newest first, filters by type and actor, and exports the current filter as CSV", async () => {
    const { page } = app;
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
    // 60 of ours (and whatever tokens the administrator made before, in other files) - 50.
    expect(second.length).toBeGreaterThanOrEqual(1 + 10);
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
});
