/**
 * `npm run serve`, the self-hosted edge (scripts/serve.ts, docs/deploy.md): the bundle `wrangler
 * deploy` would upload, on one workerd with its state on disk. A real connector and the shared Xvnc
 * desktop through it; then the edge stops and starts again on the same state directory, as after a
 * reboot or an upgrade, and what people made is still there.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { type IncomingHttpHeaders, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Browser } from "playwright-core";
import { ApiClient } from "../harness/api.ts";
import { go, signIn, vmRow } from "../harness/app-page.ts";
import { launchBrowser } from "../harness/browser.ts";
import { readRed } from "../harness/console-page.ts";
import { labConfig, type RunningConnector, startConnector } from "../harness/connector.ts";
import { type Edge, startServedEdge } from "../harness/edge.ts";
import { freePort, waitFor } from "../harness/processes.ts";
import { RfbClient, shareOfColour } from "../harness/rfb-client.ts";
import { DESKTOP_BACKGROUND } from "../harness/xvnc.ts";

const SITE = "e2e-served";
const desktop = inject("desktop");
const state = mkdtempSync(join(tmpdir(), "porthole-served-"));
let port: number;
let edge: Edge;
let connector: RunningConnector;
let browser: Browser;
const admin = () => new ApiClient(edge.url);

/** A console through the edge: the desktop's real pixels (xlogo's red). */
async function desktopThrough(api: ApiClient): Promise<number> {
  const { wsUrl } = await api.openConsole(SITE, "lab", "desk");
  const rfb = await RfbClient.open(wsUrl);
  const init = await rfb.handshake();
  expect(init).toMatchObject({ width: desktop.width, height: desktop.height });
  const share = shareOfColour(await rfb.readFramebuffer(), DESKTOP_BACKGROUND);
  rfb.close();
  return share;
}

/** A POST as a reverse proxy forwards it (fetch would not send our Host header). */
function post(path: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${edge.url}${path}`, { method: "POST", headers: { ...headers, "Content-Type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.once("error", reject);
    req.end(JSON.stringify(body));
  });
}

/** The site's connectors as the Sites screen lists them. */
async function connectorsOf(api: ApiClient): Promise<{ connectedAt: string }[]> {
  const sites = await api.call<{ name: string; connectors: { connectedAt: string }[] }[]>("GET", "/api/sites");
  return sites.body.find((s) => s.name === SITE)?.connectors ?? [];
}

beforeAll(async () => {
  port = await freePort();
  [edge, browser] = await Promise.all([startServedEdge({ port, persistTo: state, keepState: true }), launchBrowser()]);
});

afterAll(async () => {
  await Promise.allSettled([connector?.stop(), edge?.stop(), browser?.close()]);
  rmSync(state, { recursive: true, force: true });
});

describe("the self-hosted edge (npm run serve)", () => {
  it("serves the app, and a console from a real connector", async () => {
    const page = await fetch(`${edge.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<html");

    const api = admin();
    await api.signIn(edge.username, edge.password);
    const token = await api.createSite(SITE);
    expect((await api.call("POST", "/api/users", { username: "ada", password: "correct-horse-battery", role: "operator" })).status).toBe(201);
    connector = await startConnector(labConfig(edge.url, token, [{ id: "desk", name: "Test desktop", port: desktop.port }]));
    await api.waitForVms(SITE);
    expect(await desktopThrough(api)).toBeGreaterThan(0.4);
  });

  it("shows the live desktop in the browser as the demo does: Sign in, Consoles, Open console", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, edge.url, edge.username, edge.password);
    await go(page, "Consoles");
    const row = vmRow(page, SITE);
    const [consolePage] = await Promise.all([context.waitForEvent("page"), row.getByRole("button", { name: "Open console" }).click()]);
    expect(await readRed(consolePage)).toMatchObject({ width: desktop.width, height: desktop.height });
    await context.close();
  });

  it("behind a TLS proxy, gives https addresses and a Secure cookie (X-Forwarded-Proto)", async () => {
    const proxied = { Host: "console.example.com", "X-Forwarded-Proto": "https" };
    const signIn = await post("/api/session", proxied, { username: edge.username, password: edge.password });
    expect(signIn.status).toBe(200);
    const cookie = String(signIn.headers["set-cookie"]);
    expect(cookie).toMatch(/; Secure/i);
    const opened = await post("/api/consoles", { ...proxied, Cookie: cookie.split(";")[0]! }, { site: SITE, hypervisor: "lab", vm: "desk" });
    const { wsUrl, pageUrl } = JSON.parse(opened.body) as { wsUrl: string; pageUrl: string };
    expect(wsUrl).toMatch(/^wss:\/\/console\.example\.com\/ws\/console\/e2e-served\?ticket=/);
    expect(pageUrl).toMatch(/^https:\/\/console\.example\.com\//);
  });

  it("keeps sites, accounts and sign-ins when it restarts on the same state directory", async () => {
    const api = admin();
    await api.signIn(edge.username, edge.password);
    await edge.stop();
    const restartedAt = Date.now();
    edge = await startServedEdge({ port, persistTo: state, keepState: true, username: edge.username, password: edge.password });

    // The session made before the restart still works; the site and the account are there.
    const sites = await api.call<{ name: string }[]>("GET", "/api/sites");
    expect(sites.status).toBe(200);
    expect(sites.body.map((s) => s.name)).toContain(SITE);
    const users = await api.call<{ username: string; role: string }[]>("GET", "/api/users");
    expect(users.body).toContainEqual(expect.objectContaining({ username: "ada", role: "operator" }));
    const ada = admin();
    await ada.signIn("ada", "correct-horse-battery");

    // The connector (same token, kept in the site's storage) comes back by itself, and so does the picture.
    await waitFor("the connector back", async () => ((await connectorsOf(api)).some((c) => Date.parse(c.connectedAt) >= restartedAt) ? true : undefined), 30_000);
    await api.waitForVms(SITE);
    expect(await desktopThrough(ada)).toBeGreaterThan(0.4);
  });
});
