/// <reference lib="dom" />
/**
 * The console page as a person uses it, in Chromium on wrangler dev: it comes back by itself after
 * the connector restarts, stops with the reason when a link is revoked, types pasted text into a
 * real X desktop, sends Ctrl+Alt+Del from its keys menu, warns before an idle close, and has view
 * controls (1:1 with scrollbars, screenshot download, a latency readout).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page, WebSocketRoute } from "playwright-core";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { e2eSite } from "../harness/e2e-site.ts";
import { type Proc, start, waitFor } from "../harness/processes.ts";
import { type RecordingVnc, startRecordingVnc } from "../harness/recording-vnc.ts";
import { type Desktop, startDesktop } from "../harness/xvnc.ts";

let recorder: RecordingVnc;
/** The test's own X desktop with an xterm that writes what is typed into `typedFile`. */
let termDesktop: Desktop;
let xterm: Proc;
const work = join(tmpdir(), `porthole-console-page-${process.pid}`);
const typedFile = join(work, "typed.txt");

type Link = { id: string; url: string; wsUrl: string };

const site = e2eSite("e2e-console-page", {
  browser: true,
  prepare: async () => {
    site.onTeardown(async () => {
      await Promise.allSettled([recorder?.stop(), xterm?.stop()]);
      await termDesktop?.stop();
      rmSync(work, { recursive: true, force: true });
    });
    mkdirSync(work, { recursive: true });
    writeFileSync(typedFile, "");
    [recorder, termDesktop] = await Promise.all([startRecordingVnc(), startDesktop(640, 480)]);
    // No window manager: xterm covers the screen and takes the keyboard focus with xdotool.
    xterm = start("xterm", ["-display", `:${termDesktop.display}`, "-geometry", "80x24+0+0", "-e", "sh", "-c", `exec cat > ${typedFile}`]);
    await waitFor("xterm focused", async () => {
      // Until xterm's window is mapped, focusing it fails (BadMatch): try again.
      const focus = start("xdotool", ["search", "--sync", "--onlyvisible", "--class", "XTerm", "windowfocus", "--sync"], { DISPLAY: `:${termDesktop.display}` });
      return (await focus.exited) === 0 ? true : undefined;
    }, 20_000, xterm);
  },
  lab: () => [
    { id: "desk", name: "Desktop", port: site.desktop.port },
    { id: "term", name: "Terminal", port: termDesktop.port },
    { id: "recorder", name: "Recorder", port: recorder.port },
  ],
});
const { edge, desktop, api: admin, name: SITE } = site;

async function makeLink(vm: string, viewOnly = false): Promise<Link> {
  const made = await admin.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm, ttlSeconds: 600, viewOnly });
  expect(made.status).toBe(201);
  return made.body;
}

/** Waits until the canvas shows mostly the given colour (the desktop's red, the recorder's green). */
async function waitForColour(page: Page, colour: "red" | "green"): Promise<void> {
  await page.waitForFunction(
    (colour) => {
      const c = document.querySelector("#screen canvas") as HTMLCanvasElement | null;
      if (!c || c.width < 100) return false;
      const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        const [r, g, b] = [d[i]!, d[i + 1]!, d[i + 2]!];
        if (colour === "red" ? r > 200 && g < 60 && b < 60 : g > 200 && r < 60 && b < 60) n++;
      }
      return n / (d.length / 4) > 0.4;
    },
    colour,
    { timeout: 30_000, polling: 200 },
  );
}

async function openPage(url: string, context?: BrowserContext): Promise<Page> {
  const page = await (context ?? site.browser).newPage({ viewport: { width: 1024, height: 768 } });
  await page.goto(url);
  await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
  return page;
}

describe("reconnecting", () => {
  it("comes back by itself, with a countdown, after the connector is killed and restarted", async () => {
    const link = await makeLink("desk");
    const page = await openPage(link.url);
    await waitForColour(page, "red");
    // Paint the canvas black so the red seen after the reconnect is new pixels, not old ones.
    await page.evaluate(() => {
      const c = document.querySelector("#screen canvas") as HTMLCanvasElement;
      c.getContext("2d")!.fillRect(0, 0, c.width, c.height);
    });

    await site.connector.stop("SIGKILL");
    await page.waitForSelector("body[data-state=reconnecting]", { timeout: 30_000 });
    await page.getByRole("button", { name: "Reconnect now" }).waitFor({ state: "visible" });
    expect(await page.textContent("#reconnect-text")).toMatch(/connector went offline.*Reconnecting in \d+ s\./);

    await site.restartConnector();
    // No click: the backoff (at most 30 s) brings it back.
    await page.waitForSelector("body[data-state=connected]", { timeout: 45_000 });
    await waitForColour(page, "red");
    expect(await page.isVisible("#reconnect")).toBe(false);
    await page.close();
  });

  it("a signed-in console gets a fresh ticket through the session when it reconnects", async () => {
    const context = await site.browser.newContext();
    // Sign in as the browser would: the session cookie lands in this context.
    const signIn = await context.request.post(`${edge.url}/api/session`, { data: { username: edge.username, password: edge.password } });
    expect(signIn.ok()).toBe(true);
    const made = await context.request.post(`${edge.url}/api/consoles`, { data: { site: SITE, hypervisor: "lab", vm: "desk" } });
    const { pageUrl } = (await made.json()) as { pageUrl: string };
    // What the edge should put in the fragment (see the report): the console's hypervisor and VM.
    const page = await openPage(`${pageUrl}&hypervisor=lab&vm=desk`, context);
    expect(page.url()).not.toContain("ticket=");

    await site.connector.stop("SIGKILL");
    await page.waitForSelector("body[data-state=reconnecting]", { timeout: 30_000 });
    await site.restartConnector();
    await page.getByRole("button", { name: "Reconnect now" }).click();
    await page.waitForSelector("body[data-state=connected]", { timeout: 45_000 });
    await waitForColour(page, "red");
    // A reload (the spent ticket is gone from the address) also asks the session for a new one.
    await page.reload();
    await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    await waitForColour(page, "red");
    await context.close();
  });

  it("stops with the reason and no countdown when the link is revoked", async () => {
    const link = await makeLink("desk");
    const page = await openPage(link.url);
    expect((await admin.call("DELETE", `/api/links/${link.id}`)).status).toBe(204);
    await page.waitForSelector("body[data-state=closed]", { timeout: 10_000 });
    expect(await page.textContent("#notice")).toBe("This share link was revoked.");
    expect(await page.isVisible("#reconnect")).toBe(false);
    expect(await page.getByRole("button", { name: "Reconnect now" }).isVisible()).toBe(false);
    await page.close();
  });
});

describe("clipboard and keys", () => {
  it("types text from the local clipboard into an xterm on a real X desktop, and offers what the VM copies", async () => {
    const link = await makeLink("term");
    const context = await site.browser.newContext({ viewport: { width: 1024, height: 768 } });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(edge.url).origin });
    const page = await openPage(link.url, context);
    // The person's own clipboard holds the text.
    await page.evaluate(() => navigator.clipboard.writeText("Hello, Porthole! 42\n"));
    await page.locator("#clipboard-menu summary").click();
    await page.getByRole("button", { name: "Paste from my clipboard" }).click();
    await expect.poll(() => page.getByLabel("Text to send to the VM").inputValue(), { timeout: 5_000 }).toBe("Hello, Porthole! 42\n");
    await page.getByRole("button", { name: "Type it" }).click();
    const typed = await waitFor("typed text", async () => {
      const text = readFileSync(typedFile, "utf8");
      return text.includes("\n") ? text : undefined;
    }, 20_000, xterm);
    expect(typed).toBe("Hello, Porthole! 42\n");

    // In the VM, select the echoed line in the xterm (a triple click): Xvnc sends it as cut text.
    execFileSync("xdotool", ["mousemove", "30", "8", "click", "--repeat", "3", "1"], { env: { ...process.env, DISPLAY: `:${termDesktop.display}` } });
    await page.locator("#clipboard-menu summary").click();
    await page.waitForFunction(() => (document.getElementById("server-text") as HTMLTextAreaElement).value.includes("Hello, Porthole! 42"), undefined, { timeout: 10_000 });
    await page.getByRole("button", { name: "Copy to my clipboard" }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toMatch(/^Hello, Porthole! 42/);
    await context.close();
  });

  it("a view-only console has neither clipboard nor keys", async () => {
    const link = await makeLink("recorder", true);
    const page = await openPage(link.url);
    expect(await page.isVisible("#clipboard-menu")).toBe(false);
    expect(await page.isVisible("#keys-menu")).toBe(false);
    expect(await page.getByRole("button", { name: "Ctrl+Alt+Del" }).isDisabled()).toBe(true);
    expect(await page.getByRole("button", { name: "Screenshot" }).isEnabled()).toBe(true);
    await page.close();
  });

  it("refuses text over the limit with a message and sends nothing", async () => {
    const link = await makeLink("recorder");
    const page = await openPage(link.url);
    const before = recorder.messages.length;
    await page.locator("#clipboard-menu summary").click();
    await page.getByLabel("Text to send to the VM").fill("x".repeat(5000));
    await page.getByRole("button", { name: "Type it" }).click();
    expect(await page.textContent("#paste-message")).toMatch(/5,000 characters; the limit is 4,096\. Nothing was sent\./);
    // Then a small paste as RFB cut text, which arrives after anything sent before it.
    await page.getByLabel("Text to send to the VM").fill("hello");
    await page.getByRole("button", { name: "Send as clipboard" }).click();
    await waitFor("cut text", async () => (recorder.messages.slice(before).includes(6) ? true : undefined), 10_000);
    expect(recorder.messages.slice(before).filter((t) => t === 4)).toEqual([]);
    await page.close();
  });

  it("says that text outside Latin-1 would arrive as '?' on a server without the extended clipboard, and sends none of it", async () => {
    const link = await makeLink("recorder");
    const page = await openPage(link.url);
    const before = recorder.messages.length;
    await page.locator("#clipboard-menu summary").click();
    await page.getByLabel("Text to send to the VM").fill("Grüße, 東京 €");
    await page.getByRole("button", { name: "Send as clipboard" }).click();
    expect(await page.textContent("#paste-message")).toBe(
      'This VM\'s clipboard takes Latin-1 text only: 3 characters (such as 東) would arrive as "?". Nothing was sent: use Type it instead.',
    );
    // Latin-1 text still goes as cut text (it arrives after anything sent before it).
    await page.getByLabel("Text to send to the VM").fill("Grüße");
    await page.getByRole("button", { name: "Send as clipboard" }).click();
    await waitFor("cut text", async () => (recorder.messages.slice(before).includes(6) ? true : undefined), 10_000);
    expect(recorder.messages.slice(before).filter((t) => t === 6)).toHaveLength(1);
    await page.close();
  });

  it("names the toolbar's menus as they read (WCAG 2.5.3: the accessible name is the visible label)", async () => {
    const link = await makeLink("recorder");
    const page = await openPage(link.url);
    const cdp = await page.context().newCDPSession(page);
    const { root } = await cdp.send("DOM.getDocument");
    for (const [selector, label] of [["#keys-menu summary", "Keys"], ["#clipboard-menu summary", "Clipboard"]] as const) {
      const { nodeId } = await cdp.send("DOM.querySelector", { nodeId: root.nodeId, selector });
      const { nodes } = await cdp.send("Accessibility.getPartialAXTree", { nodeId, fetchRelatives: false });
      expect(await page.locator(selector).innerText()).toBe(label);
      expect(nodes[0]!.name?.value).toBe(label);
    }
    await page.close();
  });

  it("sends Ctrl+Alt+Del from the keys menu: six key events reach the VNC server", async () => {
    const link = await makeLink("recorder");
    const page = await openPage(link.url);
    await waitForColour(page, "green");
    const before = recorder.messages.length;
    await page.locator("#keys-menu summary").click();
    await page.getByRole("button", { name: "Send Ctrl+Alt+Del" }).click();
    const keys = await waitFor("key events", async () => {
      const k = recorder.messages.slice(before).filter((t) => t === 4);
      return k.length >= 6 ? k : undefined;
    }, 10_000);
    expect(keys).toHaveLength(6);
    await page.close();
  });
});

describe("idle warning", () => {
  it("shows the edge's warning with a countdown, hides it on input, and stops for good on 4440", async () => {
    const link = await makeLink("desk");
    const page = await site.browser.newPage({ viewport: { width: 1024, height: 768 } });
    let route: WebSocketRoute | undefined;
    // The real edge behind a route this test controls: it can add the edge's text notices.
    await page.routeWebSocket(/\/ws\/link\//, (ws) => {
      route = ws;
      ws.connectToServer();
    });
    await page.goto(link.url);
    await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    await waitForColour(page, "red");

    route!.send(JSON.stringify({ type: "idle-warning", closesAt: new Date(Date.now() + 60_000).toISOString() }));
    const warning = page.getByRole("alert").filter({ hasText: "No input for a while" });
    await warning.waitFor({ state: "visible" });
    expect(await warning.textContent()).toMatch(/closes in (1:00|0:[0-5]\d)\. Type or move the mouse/);
    // The text message did not reach noVNC (it would have dropped the console).
    expect(await page.getAttribute("body", "data-state")).toBe("connected");

    // Over the toolbar nothing reaches the VM, so the edge still counts down: the warning stays.
    await page.getByRole("button", { name: "Fullscreen" }).hover();
    expect(await warning.isVisible()).toBe(true);
    await page.mouse.move(500, 400);
    await page.mouse.move(520, 420);
    await warning.waitFor({ state: "hidden" });

    route!.send(JSON.stringify({ type: "idle-warning", closesAt: new Date(Date.now() + 60_000).toISOString() }));
    await warning.waitFor({ state: "visible" });
    route!.close({ code: CloseCode.idle, reason: "This console closed after 5 minutes without input." });
    await page.waitForSelector("body[data-state=closed]", { timeout: 10_000 });
    expect(await page.textContent("#notice")).toBe("This console closed after 5 minutes without input.");
    expect(await page.isVisible("#reconnect")).toBe(false);
    expect(await warning.isVisible()).toBe(false);
    await page.close();
  });
});

describe("view", () => {
  it("shows 1:1 with scrollbars, goes fullscreen and back, downloads a PNG screenshot, and reads out the round trip", async () => {
    const link = await makeLink("desk");
    const context = await site.browser.newContext({ viewport: { width: 640, height: 480 }, acceptDownloads: true });
    const page = await context.newPage();
    await page.goto(link.url);
    await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    await waitForColour(page, "red");

    const fitted = await page.evaluate(() => (document.querySelector("#screen canvas") as HTMLCanvasElement).clientWidth);
    expect(fitted).toBeLessThan(desktop.width);
    await page.getByRole("button", { name: "Fit to window" }).click();
    expect(await page.getByRole("button", { name: "1:1" }).getAttribute("aria-pressed")).toBe("false");
    await page.waitForFunction(() => {
      const s = document.querySelector("#screen > div")!; // noVNC's own scrolling box
      return s.scrollWidth > s.clientWidth && (s.querySelector("canvas") as HTMLCanvasElement).clientWidth === 800;
    });

    await page.getByRole("button", { name: "Fullscreen", pressed: false }).click();
    await page.getByRole("button", { name: "Fullscreen", pressed: true }).waitFor();
    expect(await page.evaluate(() => document.fullscreenElement === document.documentElement)).toBe(true);
    await page.getByRole("button", { name: "Fullscreen", pressed: true }).click();
    await page.getByRole("button", { name: "Fullscreen", pressed: false }).waitFor();
    expect(await page.evaluate(() => document.fullscreenElement)).toBeNull();

    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Screenshot" }).click()]);
    expect(download.suggestedFilename()).toMatch(/\.png$/);
    const png = readFileSync((await download.path())!);
    expect(png.subarray(1, 4).toString()).toBe("PNG");

    await page.waitForFunction(() => /^RTT \d+ ms$/.test(document.getElementById("rtt")!.textContent ?? ""), undefined, { timeout: 15_000 });
    await page.waitForFunction(() => /^\d+(\.\d)? (B|KB|MB)\/s$/.test(document.getElementById("rate")!.textContent ?? ""), undefined, { timeout: 5_000 });
    await context.close();
  });

  it("takes the README's screenshot of the console page", async () => {
    const link = await makeLink("desk");
    const page = await site.browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(link.url);
    await waitForColour(page, "red");
    await page.waitForFunction(() => /^RTT \d+ ms$/.test(document.getElementById("rtt")!.textContent ?? ""), undefined, { timeout: 15_000 });
    await page.locator("#keys-menu summary").click();
    mkdirSync("test-results", { recursive: true });
    await page.screenshot({ path: "test-results/console-page.png" });
    await page.close();
  });
});
