/// <reference lib="dom" />
/**
 * The console page on a desktop whose screen does not change, left alone while the site object
 * hibernates (several times), still shows the next screen change: end to end, on a real
 * `wrangler dev`, connector, Xvnc and Chromium. The edge here is this file's own, so its log can be
 * read to see the object wake.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { e2eSite } from "../harness/e2e-site.ts";
import { type Proc, start, waitFor } from "../harness/processes.ts";
import { type Desktop, startDesktop } from "../harness/xvnc.ts";

let desktop: Desktop;
const stopLater: Proc[] = [];
const site = e2eSite("idle", {
  edge: {},
  browser: true,
  prepare: async () => {
    desktop = await startDesktop(400, 300);
    site.onTeardown(async () => {
      await Promise.allSettled(stopLater.map((p) => p.stop()));
      await desktop.stop();
    });
  },
  lab: () => [{ id: "desk", name: "Desk", port: desktop.port }],
});

/** The colour noVNC shows at (x, y). */
function pixel(page: Page, x: number, y: number): Promise<number[]> {
  return page.evaluate(
    ([px, py]) => [...(document.querySelector("#screen canvas") as HTMLCanvasElement).getContext("2d")!.getImageData(px!, py!, 1, 1).data].slice(0, 3),
    [x, y],
  );
}

/** Longer than the runtime waits before evicting an idle object (workerd: 10 s of no events). */
const IDLE_MS = 25_000;

const wakes = () => site.ownEdge.proc.output().split("\n").filter((l) => l.includes('"event":"site.woke"') && l.includes('"consoles":1')).length;

describe("an idle console", () => {
  it("shows the next screen change after the site object hibernated and woke, twice", async () => {
    const { pageUrl } = await site.api.openConsole(site.name, "lab", "desk");
    const page = await site.browser.newPage({ viewport: { width: 800, height: 600 } });
    await page.goto(pageUrl);
    await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    await waitFor("the red desktop", async () => ((await pixel(page, 20, 20))[0]! > 200 ? true : undefined), 20_000);

    for (const [colour, rgb] of [["green", [0, 255, 0]], ["blue", [0, 0, 255]]] as const) {
      // Nothing changes on screen: the object goes idle and the runtime evicts it (its sockets
      // hibernate). Heartbeats are answered by the runtime and do not wake it.
      const before = wakes();
      await new Promise((r) => setTimeout(r, IDLE_MS));
      // Now the screen changes: a window in a new colour over the top-left corner.
      const win = start("xclock", ["-display", `:${desktop.display}`, "-geometry", "120x120+0+0", "-bg", colour, "-fg", colour, "-hd", colour, "-hl", colour]);
      stopLater.push(win);
      await waitFor(`the ${colour} window on the page`, async () => {
        const [r, g, b] = await pixel(page, 20, 20);
        return Math.abs(r! - rgb[0]) < 40 && Math.abs(g! - rgb[1]) < 40 && Math.abs(b! - rgb[2]) < 40 ? true : undefined;
      }, 20_000);
      expect(await page.getAttribute("body", "data-state")).toBe("connected");
      // The change reached the page through an object that had been evicted and woke for it.
      expect(wakes()).toBeGreaterThan(before);
    }
    await page.close();
  }, 400_000);
});
