/// <reference lib="dom" />
/**
 * Issue 10 in a real browser: sign-in through the app still works under the CSRF checks, a
 * cross-site form cannot sign the browser into someone's account (login CSRF), and a console
 * whose user is removed closes at once with a reason the console page shows.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ApiClient } from "../harness/api.ts";
import { e2eSite } from "../harness/e2e-site.ts";

const site = e2eSite("e2e-access", {
  lab: () => [{ id: "desk", name: "Desktop", port: site.desktop.port }],
  browser: true,
  // The attacker's page on another origin: a form that posts the attacker's credentials to the edge.
  foreign: () => `<!doctype html><title>hello</title>
<form id="f" method="POST" action="${site.edge.url}/api/session" enctype="text/plain">
<input name='{"username":"mallory","password":"mallory password 1","x":"' value='"}'></form>
<script>document.getElementById("f").submit()</script>`,
});
const { edge, api: admin, name: SITE } = site;

beforeAll(async () => {
  expect((await admin.call("POST", "/api/users", { username: "mallory", password: "mallory password 1", role: "operator" })).status).toBe(201);
});

describe("browsers", () => {
  it("a cross-site form cannot sign the browser into the attacker's account; the app's own form can sign in", async () => {
    const context = await site.browser.newContext();
    const page = await context.newPage();
    const answer = page.waitForResponse((r) => r.url() === `${edge.url}/api/session`);
    await page.goto(site.foreign.url);
    expect((await answer).status()).toBe(415);
    expect((await context.cookies(edge.url)).map((c) => c.name)).not.toContain("porthole_session");

    await page.goto(`${edge.url}/`);
    await page.getByLabel("Username").fill("mallory");
    await page.getByLabel("Password").fill("mallory password 1");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    expect(await page.getByTestId("who").innerText()).toBe("mallory · operator");
    await context.close();
  });

  it("removing a user closes their live console at once with a reason the page shows", async () => {
    expect((await admin.call("POST", "/api/users", { username: "leaver", password: "leaver password 1", role: "operator" })).status).toBe(201);
    const leaver = new ApiClient(edge.url);
    await leaver.signIn("leaver", "leaver password 1");
    const { pageUrl } = await leaver.openConsole(SITE, "lab", "desk");
    const context = await site.browser.newContext();
    const page = await context.newPage();
    await page.goto(pageUrl);
    await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    expect((await admin.call("DELETE", "/api/users/leaver")).status).toBe(204);
    await page.waitForSelector("body[data-state=closed]", { timeout: 10_000 });
    expect(await page.textContent("#notice")).toBe(`Your access was removed by ${edge.username}.`);
    await context.close();
  });
});
