/** Share links with a PIN: the code shown once, a pass for the socket, wrong codes counted per link, then a lock. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { FrameType, encodeOpenOk } from "../../shared/protocol/frames.ts";
import { auditUntil, call, createSite, openBrowser, signIn, upgrade, userSession, welcomedConnector, TestSocket } from "./helpers.ts";
import { hibernate } from "./hibernate.ts";

let n = 0;

async function setup() {
  const admin = await signIn();
  const operator = await userSession(admin, `pinop${++n}`, "operator");
  const site = `pins${n}`;
  const connector = await welcomedConnector(await createSite(admin, site));
  const res = await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", pin: true }, operator);
  expect(res.status).toBe(201);
  const link = (await res.json()) as { id: string; url: string; wsUrl: string; pin?: string };
  const secret = decodeURIComponent(new URL(link.url).hash.slice(1));
  return { admin, operator, site, connector, link, secret };
}

function tryPin(site: string, secret: string, pin: unknown): Promise<Response> {
  return call("POST", `/l/${site}/pin`, { pin }, { "X-Porthole-Link": secret });
}

/** A refused upgrade is a socket closed at once with the reason. */
async function refused(path: string): Promise<{ code: number; reason: string }> {
  const res = await upgrade(path);
  expect(res.status).toBe(101);
  return new TestSocket(res.webSocket!).closedWith();
}

const wrongOf = (pin: string) => String((Number(pin) + 1) % 1_000_000).padStart(6, "0");

describe("share links with a PIN", () => {
  it("give a six-digit PIN once, store only a hash, and open nothing without a pass", async () => {
    const { operator, site, link, secret } = await setup();
    expect(link.pin).toMatch(/^[0-9]{6}$/);
    const status = (await (await call("GET", `/l/${site}/status`, undefined, { "X-Porthole-Link": secret })).json()) as { pin: boolean };
    expect(status.pin).toBe(true);
    const listed = await (await call("GET", "/api/links", undefined, operator)).text();
    expect(listed).not.toContain(link.pin);
    // The socket without a pass, or with a made-up one, is refused before any OPEN.
    expect(await refused(new URL(link.wsUrl).pathname + new URL(link.wsUrl).search)).toMatchObject({ code: CloseCode.unauthorized, reason: expect.stringMatching(/PIN/) });
    expect((await refused(`${new URL(link.wsUrl).pathname}${new URL(link.wsUrl).search}&pass=made-up`)).code).toBe(CloseCode.unauthorized);
  });

  it("refuse malformed PINs with a 400 that counts nothing", async () => {
    const { operator, site, secret } = await setup();
    for (const pin of ["12345", "1234567", "abcdef", 123456, "", "1".repeat(5000)]) {
      const res = await tryPin(site, secret, pin);
      expect(res.status).toBe(400);
    }
    const [l] = (await (await call("GET", "/api/links", undefined, operator)).json()) as { pinFailures: number; state: string }[];
    expect(l).toMatchObject({ pinFailures: 0, state: "active" });
  });

  it("take wrong codes with the tries left, open with the right one after five wrong, and the pass is single use", async () => {
    const { admin, site, connector, link, secret } = await setup();
    for (let i = 0; i < 5; i++) {
      const res = await tryPin(site, secret, wrongOf(link.pin!));
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe(`Wrong PIN: ${9 - i} more wrong PINs lock this link.`);
    }
    const ok = await tryPin(site, secret, link.pin);
    expect(ok.status).toBe(200);
    const { pass } = (await ok.json()) as { pass: string };
    const path = `${new URL(link.wsUrl).pathname}${new URL(link.wsUrl).search}&pass=${pass}`;
    const browser = await openBrowser(`ws://porthole.test${path}`);
    const open = await connector.nextFrame();
    expect(open.type).toBe(FrameType.open);
    connector.send(encodeOpenOk(open.stream));
    // The same pass again opens nothing.
    expect((await refused(path)).code).toBe(CloseCode.unauthorized);
    browser.ws.close(1000, "done");
    await auditUntil(admin, `?type=link.pin_failed&site=${site}`, (rows) => rows.length >= 5 || undefined);
  });

  it("lock the link after ten wrong codes, for good (even the right one), and the creator sees why", async () => {
    const { admin, operator, site, link, secret } = await setup();
    for (let i = 0; i < 9; i++) expect((await tryPin(site, secret, wrongOf(link.pin!))).status).toBe(403);
    // The count survives the object's eviction (it is in SQLite).
    await hibernate(env.SITE.get(env.SITE.idFromName(site)));
    const tenth = await tryPin(site, secret, wrongOf(link.pin!));
    expect(tenth.status).toBe(410);
    expect(((await tenth.json()) as { error: { code: string } }).error.code).toBe("link_locked");
    expect((await tryPin(site, secret, link.pin)).status).toBe(410);
    expect((await call("GET", `/l/${site}/status`, undefined, { "X-Porthole-Link": secret })).status).toBe(410);
    expect((await refused(new URL(link.wsUrl).pathname + new URL(link.wsUrl).search)).code).toBe(CloseCode.gone);
    const [l] = (await (await call("GET", "/api/links", undefined, operator)).json()) as { state: string; pinFailures: number }[];
    expect(l).toMatchObject({ state: "locked", pinFailures: 10 });
    await auditUntil(admin, `?type=link.locked&site=${site}`, (rows) => rows.length === 1 || undefined);
    // A locked link may still be revoked.
    expect((await call("DELETE", `/api/links/${link.id}`, undefined, operator)).status).toBe(204);
  });

  it("without pin: true, links stay as they were (no PIN, and /pin says so)", async () => {
    const admin = await signIn();
    const site = `pins${++n}`;
    await welcomedConnector(await createSite(admin, site));
    const res = await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk" }, admin);
    const link = (await res.json()) as { url: string; pin?: string };
    expect(link.pin).toBeUndefined();
    const secret = decodeURIComponent(new URL(link.url).hash.slice(1));
    expect((await tryPin(site, secret, "123456")).status).toBe(400);
    expect((await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", pin: "yes" }, admin)).status).toBe(400);
  });
});
