/// <reference lib="dom" />
/**
 * A recorded console end to end (docs/recording.md): real `wrangler dev` (its local R2 bucket),
 * connector, Xvnc and Chromium. The admin turns Recording on in the Sites screen; the console page
 * says it is recorded; the desktop goes red, then blue, then the console closes; the recording is
 * listed with its duration and size; the player shows red at ~25 % and blue at ~90 % and says the
 * chain verifies; deleting it is audited.
 */
import { connect } from "node:net";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import type { AuditRow, LinkCreated, Recording, Site } from "../../shared/api/types.ts";
import { go, signIn, siteRegion, textOf } from "../harness/app-page.ts";
import { e2eSite } from "../harness/e2e-site.ts";
import { type Proc, start, waitFor } from "../harness/processes.ts";
import { type Desktop, startDesktop } from "../harness/xvnc.ts";

let desktop: Desktop;
const stopLater: Proc[] = [];
const site = e2eSite("e2e-rec", {
  browser: true,
  waitForVms: true,
  prepare: async () => {
    desktop = await startDesktop(400, 300);
    site.onTeardown(async () => {
      await Promise.allSettled(stopLater.map((p) => p.stop()));
      await desktop.stop();
    });
  },
  lab: () => [{ id: "desk", name: "Desk", port: desktop.port }],
});

/** The colour the page's canvas shows at (x, y). */
function pixel(page: Page, x: number, y: number): Promise<number[]> {
  return page.evaluate(
    ([px, py]) => [...(document.querySelector("#screen canvas") as HTMLCanvasElement).getContext("2d")!.getImageData(px!, py!, 1, 1).data].slice(0, 3),
    [x, y],
  );
}
const near = (got: number[], want: number[]) => got.every((v, i) => Math.abs(v - want[i]!) < 40);
const RED = [255, 0, 0];
const BLUE = [0, 0, 255];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a recorded console", () => {
  it("is recorded red then blue, listed, played back at 25 % red and 90 % blue, and its deletion audited", async () => {
    const context = await site.browser.newContext({ viewport: { width: 1200, height: 800 } });
    const app = await context.newPage();
    await signIn(app, site.edge.url, site.edge.username, site.edge.password);
    await go(app, "Sites");
    await siteRegion(app, site.name).getByLabel("Recording").selectOption("all");
    await waitFor("the policy", async () => {
      const sites = (await site.api.call<Site[]>("GET", "/api/sites")).body;
      return sites.find((s) => s.name === site.name)?.recording === "all" ? true : undefined;
    }, 10_000);

    const { pageUrl } = await site.api.openConsole(site.name, "lab", "desk");
    const page = await context.newPage();
    await page.goto(pageUrl);
    await page.getByText("This console is recorded").waitFor({ timeout: 20_000 });
    await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    await waitFor("red", async () => (near(await pixel(page, 20, 20), RED) ? true : undefined), 20_000);
    // The scene itself, not a wait for something: five seconds of red, then five of blue, so that
    // 25 % into the recording is red and 90 % is blue.
    await sleep(5000);
    stopLater.push(start("xclock", ["-display", `:${desktop.display}`, "-geometry", "400x300+0+0", "-bg", "blue", "-fg", "blue", "-hd", "blue", "-hl", "blue"]));
    await waitFor("blue", async () => (near(await pixel(page, 20, 20), BLUE) ? true : undefined), 20_000);
    await sleep(5000);
    await page.close();

    const rec = await waitFor("the finished recording", async () => {
      const list = (await site.api.call<Recording[]>("GET", `/api/recordings?site=${site.name}`)).body;
      return list[0]?.state === "complete" ? list[0] : undefined;
    }, 30_000);
    expect(rec.bytes).toBeGreaterThan(1000);
    const seconds = (Date.parse(rec.endedAt!) - Date.parse(rec.startedAt)) / 1000;
    expect(seconds).toBeGreaterThan(9);

    await go(app, "Recordings");
    const row = app.getByRole("row").filter({ hasText: "desk" }).filter({ hasText: site.name });
    await textOf(row, /\d+ s/);
    await textOf(row, /\d+(\.\d+)? (KiB|MiB|B)/);

    const player = await context.newPage();
    await player.goto(`${site.edge.url}/player#${rec.id}`);
    await player.getByText("The SHA-256 chain verifies").waitFor({ timeout: 20_000 });
    const max = Number(await player.getByLabel("Position").getAttribute("max"));
    const seek = (share: number) =>
      player.getByLabel("Position").evaluate((el, v) => {
        (el as HTMLInputElement).value = String(v);
        el.dispatchEvent(new Event("input"));
      }, Math.round(max * share));
    await seek(0.25);
    await waitFor("red at 25 %", async () => (near(await pixel(player, 20, 20), RED) ? true : undefined), 10_000);
    await seek(0.9);
    await waitFor("blue at 90 %", async () => (near(await pixel(player, 20, 20), BLUE) ? true : undefined), 10_000);
    // Back to 25 %: a fresh decoder replays from the start.
    await seek(0.25);
    await waitFor("red again", async () => (near(await pixel(player, 20, 20), RED) ? true : undefined), 10_000);
    await player.getByLabel("Speed").selectOption("16");
    await player.getByRole("button", { name: "Play" }).click();
    await player.getByRole("button", { name: "Play" }).waitFor({ timeout: 20_000 }); // played to the end
    await waitFor("blue at the end", async () => (near(await pixel(player, 20, 20), BLUE) ? true : undefined), 10_000);
    expect(await player.getByRole("button", { name: /connected/i }).count()).toBe(1); // the connect mark
    await player.close();

    await row.getByRole("button", { name: "Delete" }).click();
    await app.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await app.getByText("No recordings.").waitFor();
    await waitFor("the audit row", async () => {
      const rows = (await site.api.call<AuditRow[]>("GET", "/api/audit?type=recording.deleted")).body;
      return rows.some((r) => r.detail?.id === rec.id && r.actor === site.edge.username) ? true : undefined;
    }, 10_000);
    await context.close();
  }, 180_000);

  it("policy links: porthole listen on a share link prints that the console is recorded, and the recording names the link", async () => {
    expect((await site.api.call("PATCH", `/api/sites/${site.name}`, { recording: "links" })).status).toBe(200);
    const link = (await site.api.call<LinkCreated>("POST", "/api/links", { site: site.name, hypervisor: "lab", vm: "desk", ttlSeconds: 600 })).body;
    const proc = start(process.execPath, ["connector/cli/porthole.ts", "listen", link.url, "--listen", "127.0.0.1:0"]);
    stopLater.push(proc);
    const port = await waitFor("porthole listen", async () => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(proc.output());
      return m ? Number(m[1]) : undefined;
    }, 20_000, proc);
    // A VNC client connects: listen opens the console, and the edge's notice comes first.
    const socket = connect(port, "127.0.0.1");
    const greeting = await new Promise<string>((resolve, reject) => {
      socket.once("data", (d) => resolve(d.toString("latin1")));
      socket.once("error", reject);
    });
    expect(greeting).toMatch(/^RFB 003\.00[38]\n/);
    await waitFor("the notice", async () => (/this console is recorded/.test(proc.output()) ? true : undefined), 10_000, proc);
    socket.destroy();
    const rec = await waitFor("the link's recording", async () => {
      const list = (await site.api.call<Recording[]>("GET", `/api/recordings?site=${site.name}`)).body;
      return list.find((r) => r.linkId === link.id);
    }, 20_000);
    expect(rec.user).toBeUndefined();
    await proc.stop();
  }, 60_000);
});
