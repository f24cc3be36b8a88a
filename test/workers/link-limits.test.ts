/** Share links' start time, uses, viewers at once and note: checked at the route, kept by the site object. */
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import { call, createSite, openBrowser, signIn, TestSocket, upgrade, type TestConnector, welcomedConnector } from "./helpers.ts";
import { later } from "./clock.ts";

let n = 0;

async function setup() {
  const admin = await signIn();
  const site = `limits${++n}`;
  const connector = await welcomedConnector(await createSite(admin, site));
  return { admin, site, connector };
}

type Made = { id: string; url: string; wsUrl: string; startsAt: string | null; maxUses: number | null; maxViewers: number; note: string | null };

async function make(admin: string, site: string, extra: Record<string, unknown>): Promise<Made> {
  const res = await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", ...extra }, admin);
  expect(res.status).toBe(201);
  return (await res.json()) as Made;
}

const secretOf = (l: Made) => decodeURIComponent(new URL(l.url).hash.slice(1));
const pathOf = (l: Made) => new URL(l.wsUrl).pathname + new URL(l.wsUrl).search;

async function refused(path: string): Promise<{ code: number; reason: string }> {
  const res = await upgrade(path);
  expect(res.status).toBe(101);
  return new TestSocket(res.webSocket!).closedWith();
}

async function joined(l: Made, connector: TestConnector): Promise<TestSocket> {
  const browser = await openBrowser(l.wsUrl);
  const open = await connector.nextFrame();
  expect(open.type).toBe(FrameType.open);
  connector.send(encodeOpenOk(open.stream));
  return browser;
}

describe("share link limits", () => {
  it("refuse hostile or impossible choices with a 400 naming the field, and make nothing", async () => {
    const { admin, site } = await setup();
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ startsAt: new Date(Date.now() - 3600_000).toISOString() }, /startsAt: in the past/],
      [{ startsAt: new Date(Date.now() + 3600_000).toISOString(), ttlSeconds: 600 }, /startsAt: at or after/],
      [{ startsAt: "tomorrow" }, /startsAt/],
      [{ maxUses: 0 }, /maxUses/],
      [{ maxUses: 1.5 }, /maxUses/],
      [{ maxViewers: 0 }, /maxViewers/],
      [{ maxViewers: 11 }, /maxViewers: at most 10/],
      [{ note: "x".repeat(201) }, /note: at most 200/],
      [{ note: "two\nlines" }, /note: no control/],
    ];
    for (const [body, message] of bad) {
      const res = await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", ...body }, admin);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
    }
    const listed = (await (await call("GET", "/api/links", undefined, admin)).json()) as { site: string }[];
    expect(listed.filter((l) => l.site === site)).toEqual([]);
  });

  it("a one-time link opens once; its note and uses are listed", async () => {
    const { admin, site, connector } = await setup();
    const link = await make(admin, site, { maxUses: 1, note: "  for Ana, ticket #42  " });
    expect(link).toMatchObject({ maxUses: 1, note: "for Ana, ticket #42", startsAt: null, maxViewers: 10 });
    await joined(link, connector);
    expect(await refused(pathOf(link))).toEqual({ code: CloseCode.gone, reason: "This one-time share link was already used." });
    const status = await call("GET", `/l/${site}/status`, undefined, { "X-Porthole-Link": secretOf(link) });
    expect(status.status).toBe(410);
    const [l] = ((await (await call("GET", "/api/links", undefined, admin)).json()) as (Made & { site: string; uses: number })[]).filter((x) => x.site === site);
    expect(l).toMatchObject({ note: "for Ana, ticket #42", uses: 1, maxUses: 1 });
  });

  it("a link that starts in 20 s gives nothing before (status, socket, no OPEN), and opens after", async () => {
    const { admin, site, connector } = await setup();
    const link = await make(admin, site, { startsAt: new Date(Date.now() + 20_000).toISOString() });
    const status = await call("GET", `/l/${site}/status`, undefined, { "X-Porthole-Link": secretOf(link) });
    expect(status.status).toBe(403);
    expect(((await status.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: "link_not_started", message: expect.stringMatching(/opens at/) });
    expect((await refused(pathOf(link))).code).toBe(CloseCode.forbidden);
    await later(21_000, async () => {
      expect((await call("GET", `/l/${site}/status`, undefined, { "X-Porthole-Link": secretOf(link) })).status).toBe(200);
      await joined(link, connector);
    });
  });

  it("a link's own limit on viewers at once", async () => {
    const { admin, site, connector } = await setup();
    const link = await make(admin, site, { maxViewers: 1 });
    const first = await joined(link, connector);
    expect((await refused(pathOf(link))).code).toBe(CloseCode.tooMuchInput);
    first.ws.close(1000, "done");
    await connector.nextFrame(); // the CLOSE for the first
    await joined(link, connector);
  });
});
