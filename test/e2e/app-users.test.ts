/// <reference lib="dom" />
/**
 * The operator app's Users screen, driven as a person would: users of each role and what each
 * sees, roles changed, users disabled, passwords set. Each test makes the users it needs.
 */
import { describe, expect, it } from "vitest";
import { ApiClient } from "../harness/api.ts";
import { appSite, go, makeUser, reopen, shot, signIn, textOf, vmRow } from "../harness/app-page.ts";
import { waitFor } from "../harness/processes.ts";

const app = appSite("e2e-app-users");
const { site } = app;
const { edge, api: admin } = site;
const password = "a long password 1";

const signInStatus = (username: string, password: string) =>
  fetch(`${edge.url}/api/session`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username, password }) }).then((r) => r.status);

describe("the Users screen", () => {
  it("creates a user with each role; each sees what the role allows, and a refusal shows in the form", async () => {
    const { page } = app;
    await go(page, "Users");
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
      admin: ["Consoles", "Sites", "Sessions", "Share links", "Users", "Groups", "Access requests", "API tokens", "Audit", "Recordings"],
    };
    for (const role of ["viewer", "operator", "admin"] as const) {
      const context = await site.browser.newContext();
      const p = await context.newPage();
      await signIn(p, edge.url, `e2e-${role}`, password);
      expect(await p.getByTestId("who").innerText()).toBe(`e2e-${role} · ${role === "admin" ? "administrator" : role}`);
      expect(await p.getByRole("navigation", { name: "Main" }).getByRole("link").allInnerTexts()).toEqual(expected[role]);
      const row = vmRow(p, site.name);
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
    expect(await signInStatus("e2e-admin", password)).toBe(401);
  });

  it("changes a user's role and disables them; the user's next request is refused", async () => {
    const { page } = app;
    await makeUser(site, "e2e-promoted", "viewer", password);
    await reopen(page, "Users");
    const row = page.getByRole("row").filter({ hasText: "e2e-promoted" });
    await row.getByRole("combobox", { name: "Role of e2e-promoted" }).selectOption("operator");
    await waitFor("role saved", async () => {
      const users = (await admin.call<{ username: string; role: string }[]>("GET", "/api/users")).body;
      return users.find((u) => u.username === "e2e-promoted")?.role === "operator" ? true : undefined;
    });
    const other = new ApiClient(edge.url);
    await other.signIn("e2e-promoted", password);
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
    const { page } = app;
    await makeUser(site, "e2e-repassword", "operator", password);
    await reopen(page, "Users");
    const row = page.getByRole("row").filter({ hasText: "e2e-repassword" });
    await row.getByRole("button", { name: "Set password" }).click();
    const dialog = page.getByRole("dialog", { name: "New password for e2e-repassword" });
    await dialog.getByLabel("New password").fill("short");
    await dialog.getByRole("button", { name: "Save password" }).click();
    expect(await dialog.isVisible()).toBe(true); // the browser refuses fewer than 12 characters
    await dialog.getByLabel("New password").fill("another long password 2");
    await dialog.getByRole("button", { name: "Save password" }).click();
    await textOf(row.getByRole("status"), /Password changed/);
    expect(await signInStatus("e2e-repassword", password)).toBe(401);
    expect(await signInStatus("e2e-repassword", "another long password 2")).toBe(200);
  });
});
