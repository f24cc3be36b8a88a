/// <reference lib="dom" />
/**
 * The sharing story, for real: an operator makes a 10-minute view-only link, an outside viewer
 * watches in Chromium but cannot type, the operator revokes it and the viewer's console closes,
 * and the audit trail tells the whole story.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { CREDIT_SUBPROTOCOL } from "../../shared/protocol/limits.ts";
import { ApiClient } from "../harness/api.ts";
import { openAndReadRed } from "../harness/console-page.ts";
import { e2eSite } from "../harness/e2e-site.ts";
import { waitFor } from "../harness/processes.ts";
import { type RecordingVnc, startRecordingVnc } from "../harness/recording-vnc.ts";
import { RfbClient } from "../harness/rfb-client.ts";

let recorder: RecordingVnc;
const site = e2eSite("e2e-share", {
  browser: true,
  prepare: async () => {
    recorder = await startRecordingVnc();
    site.onTeardown(() => recorder.stop());
  },
  lab: () => [
    { id: "recorder", name: "Recorder", port: recorder.port },
    { id: "desk", name: "Desktop", port: site.desktop.port },
  ],
});
const { edge, desktop, api: admin, name: SITE } = site;
const operator = new ApiClient(edge.url);

type Link = { id: string; url: string; wsUrl: string; expiresAt: string; viewOnly: boolean };
type AuditRow = { type: string; actor: string; site?: string; detail?: Record<string, unknown> };

beforeAll(async () => {
  const created = await admin.call("POST", "/api/users", { username: "ops", password: "operator password 1", role: "operator" });
  expect(created.status).toBe(201);
  await operator.signIn("ops", "operator password 1");
});

describe("a 10-minute view-only link", () => {
  it("lets an outsider watch but not type, is cut within 2 s of revocation, and the audit tells it all", async () => {
    const made = await operator.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "recorder", ttlSeconds: 600, viewOnly: true });
    expect(made.status).toBe(201);
    const link = made.body;

    // The outsider has no account: a fresh browser context, no cookie.
    const context = await site.browser.newContext({ viewport: { width: 900, height: 700 } });
    const page = await context.newPage();
    await page.goto(link.url);
    await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    expect(await page.textContent("#badge")).toMatch(/^View only · link ends in (10:00|9:[0-5]\d)$/);
    // The screen shows the console's (green) pixels.
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

    // The outsider tries to type and click. noVNC is told it is view-only, but that is only a
    // courtesy: a second viewer on the same link speaks raw RFB and sends input anyway.
    await page.mouse.click(450, 350);
    await page.keyboard.type("rm -rf /");
    const raw = await RfbClient.open(link.wsUrl, { protocols: [CREDIT_SUBPROTOCOL] });
    await raw.handshake();
    raw.ws.send(Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61])); // KeyEvent 'a'
    raw.ws.send(Buffer.from([5, 1, 0, 10, 0, 10])); // PointerEvent, button 1
    raw.ws.send(Buffer.concat([Buffer.from([6, 0, 0, 0, 0, 0, 0, 5]), Buffer.from("hello")])); // clipboard
    const updatesBefore = recorder.updatesSent;
    raw.requestUpdate(false);
    await waitFor("screen updates continue", async () => (recorder.updatesSent > updatesBefore ? true : undefined), 10_000);

    expect(recorder.sharedFlags.length).toBeGreaterThanOrEqual(2);
    expect(recorder.sharedFlags.every((f) => f === 1)).toBe(true);
    expect(recorder.messages).toContain(3); // update requests got through
    expect(recorder.messages.filter((t) => t === 4 || t === 5 || t === 6)).toEqual([]); // no key, pointer or clipboard

    // The operator revokes the link: both viewers are cut, within 2 s, with a reason.
    const revoked = await operator.call("DELETE", `/api/links/${link.id}`);
    expect(revoked.status).toBe(204);
    const closed = await raw.closed(2000);
    expect(closed).toEqual({ code: CloseCode.gone, reason: "This share link was revoked." });
    await page.waitForSelector("body[data-state=closed]", { timeout: 10_000 });
    expect(await page.textContent("#notice")).toBe("This share link was revoked.");

    // The link's page now says so (its secret is in the fragment, so the page asks the edge).
    const again = await context.newPage();
    await again.goto(link.url);
    await again.waitForSelector("body[data-state=closed]", { timeout: 10_000 });
    expect(await again.textContent("#notice")).toMatch(/revoked the link/);
    await context.close();

    // The audit trail tells the whole story.
    const story = await waitFor("audit story", async () => {
      const rows = (await admin.call<AuditRow[]>("GET", `/api/audit?site=${SITE}&limit=200`)).body;
      const linkRows = rows.filter((r) => r.detail?.id === link.id || r.actor === `link:${link.id}`);
      return linkRows.filter((r) => r.type === "console.closed").length >= 2 ? linkRows.reverse() : undefined;
    });
    const types = story.map((r) => r.type);
    expect(types[0]).toBe("link.created");
    expect(types.filter((t) => t === "console.opened")).toHaveLength(2);
    expect(types).toContain("link.revoked");
    expect(story.find((r) => r.type === "link.created")).toMatchObject({ actor: "ops", detail: { vm: "recorder", viewOnly: true } });
    expect(story.find((r) => r.type === "link.revoked")).toMatchObject({ actor: "ops", detail: { sessionsClosed: 2 } });
    const closes = story.filter((r) => r.type === "console.closed");
    for (const c of closes) {
      expect(c).toMatchObject({ actor: `link:${link.id}`, detail: { reason: "This share link was revoked.", viewOnly: true } });
      expect(c.detail!.bytesDown as number).toBeGreaterThan(320 * 240 * 4);
    }
  });

  it("typing and clicking in a view-only page reach nothing, while the same in a full-control page do", async () => {
    /** What reaches the VNC server while a person types and clicks in a link's console page. */
    async function inputReaching(viewOnly: boolean): Promise<number[]> {
      const made = await operator.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "recorder", viewOnly });
      const context = await site.browser.newContext({ viewport: { width: 900, height: 700 } });
      const page = await context.newPage();
      await page.goto(made.body.url);
      await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
      const from = recorder.messages.length;
      await page.mouse.click(450, 350);
      await page.keyboard.type("rm -rf /");
      // An update request sent after the input: once it arrives, everything before it has too.
      const updates = recorder.messages.filter((t) => t === 3).length;
      await page.evaluate(() => window.dispatchEvent(new Event("resize")));
      await waitFor("a later update request", async () => (recorder.messages.filter((t) => t === 3).length > updates + 1 ? true : undefined), 10_000);
      await context.close();
      return recorder.messages.slice(from).filter((t) => t === 4 || t === 5 || t === 6);
    }
    // The control: the same gestures through a full-control link do reach the server.
    expect((await inputReaching(false)).length).toBeGreaterThan(0);
    expect(await inputReaching(true)).toEqual([]);
  });

  it("a view-only viewer of a real Xvnc desktop keeps watching after trying to type", async () => {
    const made = await operator.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "desk", viewOnly: true });
    const context = await site.browser.newContext();
    const page = await context.newPage();
    await page.goto(made.body.url);
    await page.waitForSelector("body[data-state=connected]", { timeout: 20_000 });
    await page.mouse.move(200, 200);
    await page.mouse.down();
    await page.mouse.up();
    await page.keyboard.type("typing into a view-only console");
    await page.close();
    await context.close();
    // The Xvnc session was never broken by a framing error, and the desktop still renders.
    const seen = await openAndReadRed(site.browser, made.body.url);
    expect(seen).toMatchObject({ width: desktop.width, height: desktop.height });
    const rows = (await admin.call<AuditRow[]>("GET", `/api/audit?type=console.closed&site=${SITE}&limit=50`)).body;
    const mine = rows.filter((r) => r.actor === `link:${made.body.id}`);
    expect(mine.every((r) => r.detail?.code !== CloseCode.badRequest)).toBe(true);
  });
});
