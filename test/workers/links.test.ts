/** Share links, ticket expiry, and view-only enforcement in the site object. */
import { env, runDurableObjectAlarm } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeData, encodeOpenOk, type Frame, FrameType } from "../../shared/protocol/frames.ts";
import {
  auditUntil,
  call,
  createSite,
  openBrowser,
  openConsole,
  signIn,
  type TestConnector,
  type TestSocket,
  upgrade,
  userSession,
  welcomedConnector,
  rfbHandshake,
} from "./helpers.ts";
import { later } from "./clock.ts";

const siteStub = (name: string) => env.SITE.get(env.SITE.idFromName(name));
let n = 0;

async function setup() {
  const admin = await signIn();
  const operator = await userSession(admin, `op${++n}`, "operator");
  const site = `links${n}`;
  const connector = await welcomedConnector(await createSite(admin, site));
  return { admin, operator, site, connector };
}

async function createLink(cookie: string, site: string, extra: Record<string, unknown> = {}) {
  const res = await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", ...extra }, cookie);
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; url: string; wsUrl: string; expiresAt: string; viewOnly: boolean };
}

/** Opens a browser socket and plays the connector's OPEN_OK. */
async function joined(wsUrl: string, connector: TestConnector): Promise<{ browser: TestSocket; stream: number }> {
  const browser = await openBrowser(wsUrl);
  const open = await connector.nextFrame();
  expect(open.type).toBe(FrameType.open);
  connector.send(encodeOpenOk(open.stream));
  return { browser, stream: open.stream };
}

async function page(url: string): Promise<Response> {
  return call("GET", new URL(url).pathname);
}

/** What the link page asks: the status, with the secret from the URL's fragment in a header. */
async function status(url: string): Promise<Response> {
  const u = new URL(url);
  return call("GET", `${u.pathname}/status`, undefined, { "X-Porthole-Link": decodeURIComponent(u.hash.slice(1)) });
}

/** The pre-fragment form of a link's URL (/l/<site>/<secret>), which must keep working. */
function legacy(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}/${u.hash.slice(1)}`;
}

/** Time travel for the object's alarm: pretend `ms` have passed. */
async function alarmAfter(site: string, ms: number): Promise<void> {
  await later(ms, () => runDurableObjectAlarm(siteStub(site)));
}

describe("share links", () => {
  it("default to 15 minutes and view-only, with unguessable URLs, and list without secrets", async () => {
    const { operator, site } = await setup();
    const link = await createLink(operator, site);
    expect(link.viewOnly).toBe(true);
    expect(Date.parse(link.expiresAt) - Date.now()).toBeGreaterThan(14 * 60_000);
    expect(Date.parse(link.expiresAt) - Date.now()).toBeLessThanOrEqual(15 * 60_000);
    const secret = new URL(link.url).hash.slice(1);
    expect(secret.length).toBeGreaterThanOrEqual(43); // ≥ 256 bits, base64url
    expect(link.wsUrl).toBe(`ws://porthole.test/ws/link/${site}?link=${secret}`);
    const listed = await (await call("GET", "/api/links", undefined, operator)).text();
    expect(listed).toContain(link.id);
    expect(listed).not.toContain(secret);
    expect((await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", ttlSeconds: 10 * 86400 }, operator)).status).toBe(400);
  });

  it("serve the console page while live, with time left, and work for several viewers", async () => {
    const { operator, site, connector } = await setup();
    const link = await createLink(operator, site, { ttlSeconds: 600, viewOnly: false });
    // The secret is in the fragment: browsers never send it, so no request log holds it.
    expect(link.url).toMatch(new RegExp(`^http://porthole\\.test/l/${site}#[A-Za-z0-9_-]{43}$`));
    const res = await page(link.url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("/console.js");
    const live = (await (await status(link.url)).json()) as { expiresAt: string; viewOnly: boolean };
    expect(live).toMatchObject({ expiresAt: link.expiresAt, viewOnly: false });
    // An old-style URL moves the secret into the fragment.
    const old = await exports.default.fetch(legacy(link.url), { redirect: "manual" });
    expect(old.status).toBe(302);
    expect(old.headers.get("Location")).toBe(`/l/${site}${new URL(link.url).hash}`);
    const a = await joined(link.wsUrl, connector);
    const b = await joined(link.wsUrl, connector);
    expect(a.stream).not.toBe(b.stream);
  });

  it("revocation closes every live session on the link at once, with a reason, and the page answers 410", async () => {
    const { operator, admin, site, connector } = await setup();
    const link = await createLink(operator, site);
    const a = await joined(link.wsUrl, connector);
    const b = await joined(link.wsUrl, connector);
    const other = await userSession(admin, `other${n}`, "operator");
    expect((await call("DELETE", `/api/links/${link.id}`, undefined, other)).status).toBe(404); // not theirs
    expect((await call("DELETE", `/api/links/${link.id}`, undefined, operator)).status).toBe(204);
    for (const s of [a, b]) {
      expect(await s.browser.closedWith(2000)).toEqual({ code: CloseCode.gone, reason: "This share link was revoked." });
    }
    // The connector is told to drop both upstreams.
    const closes: Frame[] = [];
    while (closes.length < 2) {
      const f = await connector.nextFrame();
      if (f.type === FrameType.close) closes.push(f);
    }
    const gone = await status(link.url);
    expect(gone.status).toBe(410);
    expect(await gone.text()).toMatch(/revoked the link/);
    const goneOld = await page(legacy(link.url));
    expect(goneOld.status).toBe(410);
    expect(await goneOld.text()).toMatch(/Link revoked/);
    const again = await openBrowser(link.wsUrl);
    expect(await again.closedWith()).toMatchObject({ code: CloseCode.gone, reason: expect.stringMatching(/revoked/) });
    expect((await call("DELETE", `/api/links/${link.id}`, undefined, operator)).status).toBe(410);
    await auditUntil(admin, `?type=link.revoked&site=${site}`, (rows) => rows.find((r) => r.detail?.sessionsClosed === 2));
  });

  it("expiry closes live sessions at the expiry time, and the page says it expired", async () => {
    const { operator, admin, site, connector } = await setup();
    const link = await createLink(operator, site, { ttlSeconds: 60 });
    const s = await joined(link.wsUrl, connector);
    await alarmAfter(site, 61_000);
    expect(await s.browser.closedWith()).toEqual({ code: CloseCode.gone, reason: "This share link expired." });
    await later(61_000, async () => {
      const res = await status(link.url);
      expect(res.status).toBe(410);
      expect(await res.text()).toMatch(/expired/);
      expect((await page(legacy(link.url))).status).toBe(410);
    });
    await auditUntil(admin, `?type=link.expired&site=${site}`, (rows) => rows[0]);
  });

  it("an unknown link answers 404", async () => {
    const { site } = await setup();
    expect((await call("GET", `/l/${site}/${"x".repeat(43)}`)).status).toBe(404);
    expect((await status(`http://porthole.test/l/${site}#${"x".repeat(43)}`)).status).toBe(404);
    expect((await call("GET", "/l/nosuchsite")).status).toBe(404);
  });
});

describe("console tickets", () => {
  it("expire 60 s after issue", async () => {
    const { admin, site } = await setup();
    const { wsUrl } = await openConsole(admin, site);
    await later(61_000, async () => {
      const b = await openBrowser(wsUrl);
      expect(await b.closedWith()).toMatchObject({ code: CloseCode.gone, reason: expect.stringMatching(/expired/) });
    });
  });
});

describe("view-only at the edge", () => {
  const u16 = (v: number) => [v >> 8, v & 0xff];
  const key = Uint8Array.from([4, 1, 0, 0, 0, 0, 0x00, 0x61]);
  const pointer = Uint8Array.from([5, 1, ...u16(5), ...u16(5)]);
  const fbur = Uint8Array.from([3, 1, ...u16(0), ...u16(0), ...u16(800), ...u16(600)]);

  async function dataUntilQuiet(connector: TestConnector, stream: number): Promise<number[]> {
    const got: number[] = [];
    for (;;) {
      const f = await connector.nextFrame(400).catch(() => null);
      if (!f) return got;
      if (f.type === FrameType.data && f.stream === stream) got.push(...f.bytes);
    }
  }

  it("a view-only link forwards the handshake with shared=1 and display requests, never input", async () => {
    const { operator, site, connector } = await setup();
    const link = await createLink(operator, site, { viewOnly: true });
    const { browser, stream } = await joined(link.wsUrl, connector);
    connector.send(encodeData(stream, new TextEncoder().encode("RFB 003.008\n")));
    await browser.next();
    // The server offers None: the edge lets a viewer choose only what was offered.
    connector.send(encodeData(stream, Uint8Array.from([1, 1])));
    await browser.next();
    const enc = new TextEncoder();
    // The handshake and messages, split and packed at odd places.
    const all = Uint8Array.from([...enc.encode("RFB 003.008\n"), 1, 0, ...key, ...fbur, ...pointer, ...key, ...fbur]);
    browser.ws.send(all.subarray(0, 5));
    browser.ws.send(all.subarray(5, 17));
    browser.ws.send(all.subarray(17));
    const forwarded = await dataUntilQuiet(connector, stream);
    expect(forwarded).toEqual([...enc.encode("RFB 003.008\n"), 1, 1, ...fbur, ...fbur]);
    expect(browser.closed).toBeNull();
  });

  it("closes a view-only stream that sends what cannot be framed", async () => {
    const { operator, site, connector } = await setup();
    const link = await createLink(operator, site, { viewOnly: true });
    const { browser } = await joined(link.wsUrl, connector);
    browser.ws.send(new TextEncoder().encode("GET / HTTP/1.1\r\n"));
    expect((await browser.closedWith()).code).toBe(CloseCode.badRequest);
  });

  it("a full-access link passes input through", async () => {
    const { operator, site, connector } = await setup();
    const link = await createLink(operator, site, { viewOnly: false });
    const { browser, stream } = await joined(link.wsUrl, connector);
    await rfbHandshake(connector, stream, browser);
    browser.ws.send(key);
    expect(await dataUntilQuiet(connector, stream)).toEqual([...key]);
  });

  it("the viewer role's consoles are view-only too", async () => {
    const { admin, site, connector } = await setup();
    const viewer = await userSession(admin, `view${n}`, "viewer");
    const { wsUrl } = await openConsole(viewer, site);
    const { browser, stream } = await joined(wsUrl, connector);
    connector.send(encodeData(stream, Uint8Array.from([...new TextEncoder().encode("RFB 003.008\n"), 1, 1]))); // greeting, None offered
    await browser.next();
    browser.ws.send(Uint8Array.from([...new TextEncoder().encode("RFB 003.008\n"), 1, 0, ...key]));
    expect(await dataUntilQuiet(connector, stream)).toEqual([...new TextEncoder().encode("RFB 003.008\n"), 1, 1]);
  });
});

describe("console audit", () => {
  it("records who opened which console, and bytes, duration and reason when it closes", async () => {
    const { admin, site, connector } = await setup();
    const { wsUrl } = await openConsole(admin, site);
    const { browser, stream } = await joined(wsUrl, connector);
    connector.send(encodeData(stream, new Uint8Array(1000)));
    await browser.next();
    browser.ws.send(new Uint8Array(10));
    await connector.nextFrame();
    browser.ws.close(1000, "bye");
    const closed = await auditUntil(admin, `?type=console.closed&site=${site}`, (rows) => rows[0]);
    expect(closed).toMatchObject({
      actor: "admin",
      detail: { hypervisor: "lab", vm: "desk", bytesDown: 1000, bytesUp: 10, viewOnly: false },
    });
    await auditUntil(admin, `?type=console.opened&site=${site}`, (rows) => rows.find((r) => r.detail?.via === "ticket"));
    connector.ws.close(1000, "bye");
    await auditUntil(admin, `?type=connector.gone&site=${site}`, (rows) => rows[0]);
  });

  it("refuses a foreign origin on link sockets too", async () => {
    const { operator, site } = await setup();
    const link = await createLink(operator, site);
    const url = new URL(link.wsUrl);
    expect((await upgrade(url.pathname + url.search, { Origin: "https://evil.example" })).status).toBe(403);
  });
});
