/**
 * The operator app at `/` for end-to-end tests: each app test file gets its own site (e2eSite),
 * a browser and a page signed in as the administrator, and finds every control by its role and
 * accessible name. With PORTHOLE_SCREENSHOTS=<dir>, `shot` saves a screenshot of a screen there
 * (docs/screenshots is what the README shows).
 */
import { mkdirSync } from "node:fs";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { beforeAll } from "vitest";
import { type E2eSite, type E2eSiteOptions, e2eSite } from "./e2e-site.ts";
import { waitFor } from "./processes.ts";

export const SHOTS = process.env.PORTHOLE_SCREENSHOTS;

export async function shot(p: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

export function nav(p: Page, name: string): Locator {
  return p.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true });
}

/** Opens a screen from the main navigation and waits for its heading. */
export async function go(p: Page, name: string): Promise<void> {
  await nav(p, name).click();
  await p.getByRole("heading", { level: 1, name }).waitFor();
}

/** Opens a screen afresh, so it reads its list again (going to the screen already shown does not). */
export async function reopen(p: Page, name: string): Promise<void> {
  await go(p, name === "Consoles" ? "Sessions" : "Consoles");
  await go(p, name);
}

/** Waits until the locator's text matches (Playwright-core has no expect of its own). */
export async function textOf(locator: Locator, pattern: RegExp, timeout = 20_000): Promise<string> {
  return waitFor(`text ${pattern}`, async () => {
    const text = (await locator.count()) > 0 ? await locator.first().innerText() : "";
    return pattern.test(text) ? text : undefined;
  }, timeout);
}

/** Signs in through the app's form. */
export async function signIn(p: Page, edgeUrl: string, username: string, password: string): Promise<void> {
  await p.goto(edgeUrl + "/");
  await p.getByLabel("Username").fill(username);
  await p.getByLabel("Password").fill(password);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.getByRole("button", { name: "Sign out" }).waitFor();
}

/** The Sites screen's region of one site. */
export function siteRegion(p: Page, site: string): Locator {
  return p.getByRole("region", { name: `Site ${site}`, exact: true });
}

/** The Consoles screen's row of one VM of one site. */
export function vmRow(p: Page, site: string, vm = "Test desktop"): Locator {
  return p.getByRole("row").filter({ hasText: vm }).filter({ hasText: site });
}

/** A user made through the API (by the administrator), for a test that needs one of its own. */
export async function makeUser(site: E2eSite, username: string, role: "viewer" | "operator" | "admin", password = "a long password 1"): Promise<void> {
  const res = await site.api.call("POST", "/api/users", { username, password, role });
  if (res.status !== 201) throw new Error(`create user ${username}: ${res.status} ${JSON.stringify(res.body)}`);
}

/** The usual app site's connector: a "lab" with the test desktop, and a pool nobody answers. */
export function appConnectorConfig(edgeUrl: string, token: string, desktopPort: number, vms: { id: string; name: string }[] = [{ id: "desk", name: "Test desktop" }]) {
  return {
    edge: edgeUrl,
    token,
    hypervisors: [
      { name: "lab", type: "vnc", vms: vms.map((v) => ({ ...v, address: `127.0.0.1:${desktopPort}` })) },
      // Nothing listens there: the Sites screen must say so in words.
      { name: "gone", type: "xenserver", url: "https://127.0.10.9", username: "root", password: "secret", tls: { insecure: true } },
    ],
  };
}

export interface AppSite {
  site: E2eSite;
  /** The administrator's browser context (1200×800) and a page in it, signed in. */
  readonly context: BrowserContext;
  readonly page: Page;
}

/**
 * An app test file's own site (its connector, from `appConnectorConfig`, started before the tests
 * unless `connector: false`), a browser, and the administrator's page signed in through the form.
 */
export function appSite(name: string, { connector = true, vms, ...options }: Omit<E2eSiteOptions, "connector" | "lab" | "browser"> & { connector?: boolean; vms?: { id: string; name: string }[] } = {}): AppSite {
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  const site = e2eSite(name, {
    ...options,
    browser: true,
    connector: (token) => appConnectorConfig(site.edge.url, token, site.desktop.port, vms),
    startConnector: connector,
    waitForVms: connector,
  });
  beforeAll(async () => {
    context = await site.browser.newContext({ viewport: { width: 1200, height: 800 } });
    page = await context.newPage();
    await signIn(page, site.edge.url, site.edge.username, site.edge.password);
  });
  return {
    site,
    get context() {
      if (!context) throw new Error("appSite: the setup failed");
      return context;
    },
    get page() {
      if (!page) throw new Error("appSite: the setup failed");
      return page;
    },
  };
}
