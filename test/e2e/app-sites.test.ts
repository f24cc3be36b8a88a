/// <reference lib="dom" />
/**
 * The operator app's Sites screen, driven as a person would: a new site with its token and
 * install commands, its connector's health, Rotate token and Delete site, each on a site of its own.
 */
import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { appSite, go, shot, siteRegion, textOf } from "../harness/app-page.ts";
import { waitFor } from "../harness/processes.ts";

const app = appSite("e2e-app", { connector: false });
const { site } = app;
const { edge, api: admin } = site;

describe("the Sites screen", () => {
  it("refuses a bad site name where it was typed, then creates a site and shows its token once with the commands", async () => {
    const { page } = app;
    const name = "e2e-app-new";
    await go(page, "Sites");
    await page.getByRole("button", { name: "New site" }).click();
    await page.getByLabel("Site name").fill("Not A Name");
    await page.getByRole("button", { name: "Create", exact: true }).click();
    const form = page.getByRole("form", { name: "New site" });
    expect(await textOf(form.getByRole("alert"), /lowercase/)).toMatch(/name: use 1-63 lowercase letters/);

    await page.getByLabel("Site name").fill(name);
    await page.getByRole("button", { name: "Create", exact: true }).click();
    const field = page.getByRole("textbox", { name: "Connector token", exact: true });
    await field.waitFor();
    expect(await field.getAttribute("readonly")).not.toBeNull();
    const token = await field.inputValue();
    expect(token).toMatch(/^pht1\.e2e-app-new\.[A-Za-z0-9_-]{43}$/);
    const config = await page.getByRole("textbox", { name: "porthole.yaml" }).inputValue();
    expect(config).toContain(`edge: ${edge.url}\ntoken: "${token}"`);
    const body = await page.locator("main").innerText();
    expect(body).toContain("node porthole.mjs connector --config porthole.yaml");
    expect(body).toContain("porthole.mjs install --config porthole.yaml");
    expect(body).toContain("PORTHOLE_CONNECTOR_TOKEN");

    // The same name again is refused, in words, in the form.
    await page.getByRole("button", { name: "New site" }).click();
    await page.getByLabel("Site name").fill(name);
    await page.getByRole("button", { name: "Create", exact: true }).click();
    expect(await textOf(page.getByRole("form", { name: "New site" }).getByRole("alert"), /exists/)).toMatch(/A site named e2e-app-new already exists/);
    await page.getByRole("button", { name: "Cancel" }).click();
    // The token is shown once: Done hides it for good.
    await page.getByRole("button", { name: "Done" }).click();
    expect(await field.count()).toBe(0);
  });

  it("sees a connector started with the site's token online, with hostname, version, address, since when and each hypervisor's state", async () => {
    const { page } = app;
    await go(page, "Sites");
    expect(await textOf(siteRegion(page, site.name), /No connector online/)).toBeTruthy();
    await site.restartConnector();
    const text = await textOf(siteRegion(page, site.name), /gone \(XenServer pool\): unreachable: (?!not contacted yet).+/, 30_000);
    expect(text).toContain("1 connector online");
    expect(text).toContain(hostname());
    expect(text).toMatch(/Version\s+\d+\.\d+\.\d+ \(porthole-connector\/\d+\.\d+\.\d+\)/);
    expect(text).toMatch(/Online since\s+\S.*\(\d+ s\)/);
    expect(text).toContain("lab (VNC servers): reachable, 1 VM");
    expect(text).toMatch(/Address\s+(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)/);
    await shot(page, "sites");
  });

  it("Rotate token shows a new token once; the connector on the old one is dropped and one on the new one comes online", async () => {
    const { page } = app;
    const name = "e2e-app-rotate";
    const old = await admin.createSite(name);
    const first = await site.startConnector(site.config(old));
    await go(page, "Sites");
    await textOf(siteRegion(page, name), /1 connector online/);
    await siteRegion(page, name).getByRole("button", { name: "Rotate token" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Rotate" }).click();
    const field = page.getByRole("textbox", { name: "Connector token", exact: true });
    await field.waitFor();
    const fresh = await field.inputValue();
    expect(fresh).toMatch(/^pht1\.e2e-app-rotate\./);
    expect(fresh).not.toBe(old);
    await textOf(siteRegion(page, name), /No connector online/);
    await first.stop();
    await site.startConnector(site.config(fresh));
    await textOf(siteRegion(page, name), /1 connector online/);
    await page.getByRole("button", { name: "Done" }).click();
  });

  it("Delete site asks first, then the site and its consoles are gone", async () => {
    const { page } = app;
    const name = "e2e-app-doomed";
    await site.startConnector(site.config(await admin.createSite(name)));
    await go(page, "Sites");
    const region = siteRegion(page, name);
    await textOf(region, /1 connector online/);
    await region.getByRole("button", { name: "Delete site" }).click();
    const dialog = page.getByRole("dialog", { name: `Delete site ${name}?` });
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect(await region.count()).toBe(1);
    await region.getByRole("button", { name: "Delete site" }).click();
    await dialog.getByRole("button", { name: "Delete", exact: true }).click();
    await waitFor("site gone", async () => ((await region.count()) === 0 ? true : undefined));
    const sites = (await admin.call<{ name: string }[]>("GET", "/api/sites")).body;
    expect(sites.map((s) => s.name)).not.toContain(name);
  });
});
