/// <reference lib="dom" />
/**
 * The console page against what a person should not have to handle: another site opening a console
 * in their name (it must wait for their click), a VNC server that restarts or blacklists this host
 * for a while (the page comes back by itself), one that freezes (the page says no picture is coming,
 * and stops saying it when the picture flows again), an edge it cannot reach (said in words); and
 * the End session dialog with a long name. Its own site, connector and Xvnc servers: this file
 * kills, freezes and blacklists them.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page, WebSocketRoute } from "playwright-core";
import { describe, expect, it } from "vitest";
import { readRed } from "../harness/console-page.ts";
import { e2eSite } from "../harness/e2e-site.ts";
import { type Desktop, startDesktop } from "../harness/xvnc.ts";

let desktop: Desktop;
/** A desktop that also takes VNC passwords, so failed logins can get this host blacklisted. */
let guarded: Desktop;
const work = mkdtempSync(join(tmpdir(), "porthole-resilience-"));
/** A VM name with no place to break a line, in scripts a narrow dialog must wrap anyway. */
const LONG_NAME = "Сервер-базы-данных-производственного-кластера-東京データセンター第二号機";
/** Where the foreign page sends the top window. */
let foreignTarget = "";

const site = e2eSite("e2e-console-resilience", {
  browser: true,
  prepare: async () => {
    site.onTeardown(async () => {
      await Promise.allSettled([desktop?.stop(), guarded?.stop()]);
      rmSync(work, { recursive: true, force: true });
    });
    const passwordFile = join(work, "passwd");
    writeFileSync(passwordFile, execFileSync("vncpasswd", ["-f"], { input: "secret12\n" }));
    [desktop, guarded] = await Promise.all([
      startDesktop(640, 480, { name: "flaky" }),
      // None first: the console page takes it; a failed VncAuth login counts towards the blacklist.
      startDesktop(640, 480, { name: "guarded", extraArgs: ["-SecurityTypes", "None,VncAuth", "-PasswordFile", passwordFile, "-BlacklistThreshold", "3", "-BlacklistTimeout", "10"] }),
    ]);
  },
  lab: () => [
    { id: "flaky", name: "Flaky", port: desktop.port },
    { id: "guarded", name: "Guarded", port: guarded.port },
    // The sessions list names a console's VM by its id (a XenServer UUID, here a long name).
    { id: LONG_NAME, name: LONG_NAME, port: desktop.port },
  ],
  // 127.0.0.2 is another site than the edge's 127.0.0.1 (an IP address is its own site).
  foreign: () => `<!doctype html><script>top.location.href = ${JSON.stringify(foreignTarget)};</script>`,
});
const { edge, api: admin, name: SITE } = site;

/** A browser context signed in as the admin (the session cookie is in it). */
async function signedIn(width = 1024): Promise<BrowserContext> {
  const context = await site.browser.newContext({ viewport: { width, height: 768 } });
  const res = await context.request.post(`${edge.url}/api/session`, { data: { username: edge.username, password: edge.password } });
  expect(res.ok()).toBe(true);
  return context;
}

/** Records what would give the page a console: ticket requests and console sockets. */
function watchTickets(page: Page): string[] {
  const seen: string[] = [];
  page.on("request", (req) => {
    if (req.method() === "POST" && new URL(req.url()).pathname === "/api/consoles") seen.push("ticket");
  });
  page.on("websocket", (ws) => seen.push(ws.url()));
  return seen;
}

describe("a console opened by another site", () => {
  for (const [how, path] of [
    ["the console page", `/console#site=${SITE}&hypervisor=lab&vm=flaky`],
    ["an /open address", `/open?site=${SITE}&hypervisor=lab&vm=flaky`],
  ] as const) {
    it(`through ${how}: no ticket and no console until the person confirms`, async () => {
      const context = await signedIn();
      const page = await context.newPage();
      const seen = watchTickets(page);
      const fetchSite: Promise<string>[] = [];
      page.on("request", (req) => {
        if (req.isNavigationRequest() && new URL(req.url()).origin === edge.url) fetchSite.push(req.allHeaders().then((h) => h["sec-fetch-site"] ?? "absent"));
      });
      foreignTarget = `${edge.url}${path}`;
      await page.goto(site.foreign.url);
      const confirm = page.getByRole("button", { name: "Open console" });
      await confirm.waitFor({ state: "visible", timeout: 20_000 });
      expect(await page.getByRole("heading", { name: `Open the console of flaky on ${SITE}?` }).isVisible()).toBe(true);
      expect(new URL(page.url()).origin).toBe(edge.url);
      mkdirSync("test-results", { recursive: true });
      await page.screenshot({ path: `test-results/console-confirm-${how.replaceAll(" ", "-")}.png` });
      expect(seen).toEqual([]);
      // What the edge judged by: Chromium calls 127.0.0.2 → 127.0.0.1 cross-site. (Signed in by a
      // SameSite=Strict cookie, /open goes by the sign-in page, whose app passes it on with ask=1.)
      expect(await fetchSite[0]).toBe("cross-site");

      await confirm.click();
      await readRed(page);
      expect(seen[0]).toBe("ticket");
      await context.close();
    });
  }

  it("a console opened from the edge's own pages opens at once", async () => {
    const context = await signedIn();
    const page = await context.newPage();
    await page.goto(`${edge.url}/healthz`);
    await page.evaluate((url) => (location.href = url), `${edge.url}/console#site=${SITE}&hypervisor=lab&vm=flaky`);
    await readRed(page);
    expect(await page.getByRole("button", { name: "Open console" }).count()).toBe(0);
    await context.close();
  });
});

describe("a VNC server that stops answering or restarts", () => {
  it("says when no picture arrives although the page asked, and clears it when bytes flow again", async () => {
    const context = await signedIn();
    const page = await context.newPage();
    await page.goto(`${edge.url}/console#site=${SITE}&hypervisor=lab&vm=flaky`);
    await readRed(page);
    const stalled = page.getByRole("status").filter({ hasText: "No picture from the console" });

    desktop.freeze();
    try {
      // A still screen nobody touches says nothing (and lets the site object hibernate); the
      // person moving the pointer over the screen makes the page ask the server for a pixel.
      const screen = page.locator("#screen");
      const box = (await screen.boundingBox())!;
      for (let i = 0; i < 40 && !(await stalled.isVisible()); i++) {
        await page.mouse.move(box.x + 10 + (i % 50), box.y + 10);
        await stalled.waitFor({ state: "visible", timeout: 1000 }).catch(() => undefined);
      }
      expect(await stalled.isVisible()).toBe(true);
      expect(await stalled.textContent()).toMatch(/No picture from the console for \d+ s/);
    } finally {
      desktop.thaw();
    }
    await stalled.waitFor({ state: "hidden", timeout: 30_000 });
    expect(await page.getAttribute("body", "data-state")).toBe("connected");
    await context.close();
  });

  it("comes back by itself after the VNC server restarts on the same port", async () => {
    const made = await admin.call<{ url: string }>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "flaky", ttlSeconds: 600, viewOnly: false });
    expect(made.status).toBe(201);
    const page = await site.browser.newPage({ viewport: { width: 1024, height: 768 } });
    await page.goto(made.body.url);
    await readRed(page);

    const port = desktop.port;
    await desktop.stop();
    // The server's end is passing ("The console ended."): a countdown, not a final "Disconnected".
    await page.waitForSelector("body[data-state=reconnecting]", { timeout: 30_000 });
    desktop = await startDesktop(640, 480, { name: "flaky", port });
    // No click: the backoff (at most 30 s) brings it back.
    await page.waitForSelector("body[data-state=connected]", { timeout: 45_000 });
    await readRed(page);
    expect(await page.isVisible("#notice")).toBe(false);
    await page.close();
  });
});

/**
 * One VncAuth login with a wrong answer, as a client with a bad password makes it; "refused" when
 * the server already turns this host away ("Too many security failures").
 */
async function failedLogin(port: number): Promise<"failed" | "refused"> {
  const socket = connect(port, "127.0.0.1");
  let buffered = Buffer.alloc(0);
  let want = 0;
  let deliver: ((b: Buffer) => void) | null = null;
  const take = (n: number) =>
    new Promise<Buffer>((resolve) => {
      want = n;
      deliver = resolve;
      pump();
    });
  const pump = () => {
    if (!deliver || buffered.length < want) return;
    const out = buffered.subarray(0, want);
    buffered = buffered.subarray(want);
    const d = deliver;
    deliver = null;
    d(out);
  };
  socket.on("data", (d) => {
    buffered = Buffer.concat([buffered, d]);
    pump();
  });
  try {
    // A blacklisted host gets RFB 3.3 and security type 0 at once.
    if ((await take(12)).toString() === "RFB 003.003\n") return (await take(4)).readUInt32BE(0) === 0 ? "refused" : "failed";
    socket.write("RFB 003.008\n");
    const types = await take((await take(1))[0]!);
    if (types.length === 0) return "refused";
    expect([...types]).toContain(2);
    socket.write(Buffer.from([2]));
    await take(16);
    socket.write(Buffer.alloc(16));
    expect((await take(4)).readUInt32BE(0)).toBe(1);
    return "failed";
  } finally {
    socket.destroy();
  }
}

describe("a VNC server that blacklists this host for a while", () => {
  it("is retried with the countdown until the blacklist ends, not given up on", async () => {
    // Until the server turns this host away (the connector's own dials may count towards it too).
    for (let i = 0; i < 10 && (await failedLogin(guarded.port)) === "failed"; i++);
    const made = await admin.call<{ url: string }>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "guarded", ttlSeconds: 600, viewOnly: false });
    const page = await site.browser.newPage({ viewport: { width: 1024, height: 768 } });
    await page.goto(made.body.url);
    await page.waitForSelector("body[data-state=reconnecting]", { timeout: 30_000 });
    // What the page hears depends on who reads the refusal first: noVNC ("Too many security
    // failures") or the connector, whose upstream then ends ("The console ended."). Both are retried.
    expect(await page.textContent("#reconnect-text")).toMatch(/(Too many security failures|The console ended)\.* Reconnecting in \d+ s\./);
    // The blacklist lasts 10 s: the backoff (1, 2, 4, 8 s) gets past it without a click.
    await page.waitForSelector("body[data-state=connected]", { timeout: 45_000 });
    await readRed(page);
    await page.close();
  });
});

describe("an edge that cannot be reached", () => {
  it("says so in words while it retries, and comes back when the edge answers again", async () => {
    const context = await signedIn();
    const page = await context.newPage();
    let socket: WebSocketRoute | undefined;
    await page.routeWebSocket(/\/ws\/console\//, (ws) => {
      socket = ws;
      ws.connectToServer();
    });
    await page.goto(`${edge.url}/console#site=${SITE}&hypervisor=lab&vm=flaky`);
    await readRed(page);

    // The edge goes away: the console drops and the page's requests for a new ticket fail.
    await page.route("**/api/consoles", (route) => route.abort("connectionrefused"));
    socket!.close({ code: 1012, reason: "" });
    const retrying = page.getByRole("status").filter({ hasText: "Cannot reach Porthole" });
    await retrying.waitFor({ state: "visible", timeout: 30_000 });
    expect((await retrying.innerText()).trim()).toMatch(/^Cannot reach Porthole: the network or Porthole's edge is down\. Reconnecting in \d+ s\./);
    expect(await page.getByText("Failed to fetch").count()).toBe(0);

    await page.unroute("**/api/consoles");
    await page.getByRole("button", { name: "Reconnect now" }).click();
    await page.waitForSelector("body[data-state=connected]", { timeout: 30_000 });
    await context.close();
  });
});

describe("the End session dialog", () => {
  it("keeps a long non-ASCII VM name inside its box, at phone and desktop widths", async () => {
    const made = await admin.call<{ url: string }>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: LONG_NAME, ttlSeconds: 600, viewOnly: false });
    const viewer = await site.browser.newPage();
    await viewer.goto(made.body.url);
    await readRed(viewer);
    mkdirSync("test-results", { recursive: true });
    for (const width of [360, 1280]) {
      const context = await signedIn(width);
      const app = await context.newPage();
      await app.goto(`${edge.url}/#/sessions`);
      // Below 40rem rows are cards: found by their text, not by the table role.
      await app.locator("tr", { hasText: LONG_NAME }).getByRole("button", { name: "End session" }).click();
      const dialog = app.getByRole("dialog", { name: `End the console of ${LONG_NAME}` });
      await dialog.waitFor();
      await app.screenshot({ path: `test-results/end-session-${width}.png` });
      const fits = await dialog.evaluate((d) => {
        const box = d.getBoundingClientRect();
        const title = d.querySelector("h2")!;
        const t = title.getBoundingClientRect();
        return { titleInBox: t.left >= box.left && t.right <= box.right && title.scrollWidth <= title.clientWidth, boxInWindow: box.left >= 0 && box.right <= innerWidth };
      });
      expect(fits, `${width} px`).toEqual({ titleInBox: true, boxInWindow: true });
      await context.close();
    }
    await viewer.close();
  });
});
