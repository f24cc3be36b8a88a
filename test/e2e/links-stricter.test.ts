/// <reference lib="dom" />
/**
 * Share links, stricter, in Chromium: a PIN link refuses five wrong codes (each saying how many
 * tries are left) while the VM sees no connection and the page no pixel, then the right code shows
 * the desktop; a one-time link opens once; a link that starts in 20 s gives nothing before; a link
 * that asks first keeps its viewer waiting, without a pixel, until Allow on the admin's console
 * page, a denied viewer is told, and an allowed viewer whose connector vanished comes back without
 * anyone asked again.
 */
import { describe, expect, it } from "vitest";
import { e2eSite } from "../harness/e2e-site.ts";
import { waitFor } from "../harness/processes.ts";
import type { Page } from "playwright-core";
import { type RecordingVnc, startRecordingVnc } from "../harness/recording-vnc.ts";
import { go, signIn } from "../harness/app-page.ts";

let recorder: RecordingVnc;
const site = e2eSite("e2e-pin", {
  browser: true,
  waitForVms: true,
  prepare: async () => {
    recorder = await startRecordingVnc();
    site.onTeardown(() => recorder.stop());
  },
  lab: () => [{ id: "recorder", name: "Recorder", port: recorder.port }],
});
const { api: admin, name: SITE } = site;

type Link = { id: string; url: string; pin?: string };

/** Waits until the page's canvas shows the recorder's green. */
async function greenScreen(page: Page): Promise<void> {
  await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
  await page.waitForFunction(
    () => {
      const c = document.querySelector("#screen canvas") as HTMLCanvasElement | null;
      if (!c || c.width !== 320) return false;
      const d = c.getContext("2d")!.getImageData(160, 120, 1, 1).data;
      return d[1]! > 200 && d[0]! < 60;
    },
    undefined,
    { timeout: 20_000 },
  );
}

describe("a share link with a PIN", () => {
  it("refuses five wrong codes without a pixel, then the right code shows the desktop", async () => {
    const made = await admin.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "recorder", pin: true });
    expect(made.status).toBe(201);
    const { url, pin } = made.body;
    expect(pin).toMatch(/^\d{6}$/);
    const wrong = String((Number(pin) + 1) % 1_000_000).padStart(6, "0");

    const context = await site.browser.newContext({ viewport: { width: 900, height: 700 } });
    const page = await context.newPage();
    await page.goto(url);
    const field = page.getByRole("textbox", { name: "PIN" });
    const join = page.getByRole("button", { name: "Join" });
    for (let i = 0; i < 5; i++) {
      await field.fill(wrong);
      await join.click();
      await page.getByRole("alert").filter({ hasText: `Wrong PIN: ${9 - i} more wrong PINs lock this link.` }).waitFor();
    }
    // Nothing reached the VM and nothing was drawn.
    expect(recorder.sharedFlags).toHaveLength(0);
    expect(await page.locator("#screen canvas").count()).toBe(0);

    await field.fill(pin!);
    await join.click();
    await greenScreen(page);
    expect(recorder.sharedFlags).toHaveLength(1);
    // The PIN never went into the address bar.
    expect(page.url()).not.toContain(pin!);
    await context.close();

    const audit = await admin.call<{ type: string }[]>("GET", `/api/audit?type=link.pin_failed&site=${SITE}`);
    expect(audit.body.length).toBe(5);
  });

  it("a one-time link opens once", async () => {
    const made = await admin.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "recorder", maxUses: 1 });
    expect(made.status).toBe(201);
    const before = recorder.sharedFlags.length;
    const context = await site.browser.newContext();
    const first = await context.newPage();
    await first.goto(made.body.url);
    await greenScreen(first);
    const second = await context.newPage();
    await second.goto(made.body.url);
    await second.getByRole("alert").filter({ hasText: "already used" }).waitFor();
    expect(recorder.sharedFlags.length).toBe(before + 1);
    await context.close();
  });

  it("a link that starts in 20 s gives nothing before, then shows the desktop", async () => {
    const startsAt = new Date(Date.now() + 20_000).toISOString();
    const made = await admin.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "recorder", startsAt });
    expect(made.status).toBe(201);
    const before = recorder.sharedFlags.length;
    const context = await site.browser.newContext();
    const page = await context.newPage();
    await page.goto(made.body.url);
    await page.getByRole("alert").filter({ hasText: "opens at" }).waitFor();
    expect(await page.locator("#screen canvas").count()).toBe(0);
    expect(recorder.sharedFlags.length).toBe(before);
    // The edge's own word that the time has come (its status answers), then the page again.
    const secret = new URL(made.body.url).hash.slice(1);
    await waitFor(
      "the link's start",
      async () => ((await fetch(`${site.edge.url}/l/${SITE}/status`, { headers: { "X-Porthole-Link": decodeURIComponent(secret) } })).status === 200 ? true : undefined),
      40_000,
    );
    await page.reload();
    await greenScreen(page);
    await context.close();
  });

  it("Watching now lists both people on the admin's console page, and says who joined", async () => {
    const opened = await admin.call<{ pageUrl: string }>("POST", "/api/consoles", { site: SITE, hypervisor: "lab", vm: "recorder" });
    expect(opened.status).toBe(201);
    const made = await admin.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "recorder", note: "for Ana" });
    const context = await site.browser.newContext();
    const mine = await context.newPage();
    await mine.goto(opened.body.pageUrl);
    await greenScreen(mine);
    const list = mine.getByRole("list", { name: "Watching now" });
    await list.getByRole("listitem").filter({ hasText: site.edge.username }).waitFor();
    const theirs = await context.newPage();
    await theirs.goto(made.body.url);
    await greenScreen(theirs);
    await list.getByRole("listitem").filter({ hasText: "link: for Ana (view only)" }).waitFor();
    expect(await list.getByRole("listitem").count()).toBe(2);
    await mine.getByRole("status").filter({ hasText: "link: for Ana joined." }).waitFor();
    // The link's viewer sees the same two.
    await theirs.getByRole("list", { name: "Watching now" }).getByRole("listitem").filter({ hasText: site.edge.username }).waitFor();
    await theirs.close();
    await mine.getByRole("status").filter({ hasText: "link: for Ana left." }).waitFor();
    await context.close();
  });
});

describe("a share link that asks before each viewer joins", () => {
  /** The admin's own console of the recorder, signed in (Allow and Deny act in their name). */
  async function adminConsole() {
    const opened = await admin.call<{ pageUrl: string }>("POST", "/api/consoles", { site: SITE, hypervisor: "lab", vm: "recorder" });
    expect(opened.status).toBe(201);
    const context = await site.browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    await signIn(page, site.edge.url, site.edge.username, site.edge.password);
    await page.goto(opened.body.pageUrl);
    await greenScreen(page);
    return { page, context };
  }

  /** A link viewer who gives `name` and waits; nothing of the screen reaches them meanwhile. */
  async function askToJoin(url: string, name: string) {
    const context = await site.browser.newContext();
    const page = await context.newPage();
    await page.goto(url);
    await page.getByRole("textbox", { name: "Your name" }).fill(name);
    await page.getByRole("button", { name: "Ask to join" }).click();
    await page.getByRole("status").filter({ hasText: "Waiting for someone in control of Recorder to let you in" }).waitFor();
    return { page, context };
  }

  it("keeps its viewer waiting with no pixels until Allow on the admin's console page", async () => {
    const mine = await adminConsole();
    const made = await admin.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "recorder", approval: true });
    expect(made.status).toBe(201);
    const before = recorder.sharedFlags.length;
    const ana = await askToJoin(made.body.url, "Ana");

    const prompt = mine.page.getByRole("group", { name: "Ana wants to watch Recorder (view only)" });
    await prompt.waitFor();
    // Still nothing for Ana: no connection to the VM, no canvas.
    expect(recorder.sharedFlags.length).toBe(before);
    expect(await ana.page.locator("#screen canvas").count()).toBe(0);

    await prompt.getByRole("button", { name: "Allow" }).click();
    await greenScreen(ana.page);
    expect(recorder.sharedFlags.length).toBe(before + 1);
    await prompt.waitFor({ state: "detached" });
    await mine.page.getByRole("list", { name: "Watching now" }).getByRole("listitem").filter({ hasText: "link: Ana (view only)" }).waitFor();
    await ana.context.close();
    await mine.context.close();
    const audit = await admin.call<{ actor: string }[]>("GET", `/api/audit?type=link.join_allowed&site=${SITE}`);
    expect(audit.body.map((r) => r.actor)).toContain(site.edge.username);
  });

  it("tells a denied viewer so, and never shows them the screen", async () => {
    const mine = await adminConsole();
    const made = await admin.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "recorder", approval: true });
    const before = recorder.sharedFlags.length;
    const bo = await askToJoin(made.body.url, "Bo");
    await mine.page.getByRole("group", { name: "Bo wants to watch Recorder (view only)" }).getByRole("button", { name: "Deny" }).click();
    await bo.page.getByRole("alert").filter({ hasText: "said no" }).waitFor();
    expect(await bo.page.locator("#screen canvas").count()).toBe(0);
    expect(recorder.sharedFlags.length).toBe(before);
    await bo.context.close();
    await mine.context.close();
  });

  it("lets an allowed viewer whose console dropped (the connector went away) back in without asking again", async () => {
    const made = await admin.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "recorder", approval: true });
    expect(made.status).toBe(201);
    const ana = await askToJoin(made.body.url, "Ana again");
    // Allowed from the operator app's Share links screen this time.
    const app = await site.browser.newContext();
    const screen = await app.newPage();
    await signIn(screen, site.edge.url, site.edge.username, site.edge.password);
    await go(screen, "Share links");
    await screen.getByRole("group", { name: "Ana again wants to watch recorder (view only)" }).getByRole("button", { name: "Allow" }).click();
    await greenScreen(ana.page);
    await app.close();

    await site.connector.stop("SIGKILL");
    await ana.page.waitForSelector("body[data-state=reconnecting]", { timeout: 30_000 });
    await site.restartConnector();
    await ana.page.getByRole("button", { name: "Reconnect now" }).click();
    await greenScreen(ana.page);
    // Nobody was asked again: one request in the audit trail, none waiting.
    const asked = await admin.call<{ detail: { id: string } }[]>("GET", `/api/audit?type=link.join_asked&site=${SITE}`);
    expect(asked.body.filter((r) => r.detail.id === made.body.id)).toHaveLength(1);
    const links = await admin.call<{ id: string; waiting: unknown[] }[]>("GET", "/api/links");
    expect(links.body.find((l) => l.id === made.body.id)?.waiting).toEqual([]);
    await ana.context.close();
  });
});
