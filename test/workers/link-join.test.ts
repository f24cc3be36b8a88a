/**
 * Share links that ask before each viewer joins: the viewer waits with no socket, everyone in
 * control of the VM's console is asked, Allow gives a single-use pass, Deny and silence say no,
 * across the object's hibernation; a link that ends takes its waiting viewers with it.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import { CREDIT_SUBPROTOCOL, JOIN_WAIT_MS } from "../../shared/protocol/limits.ts";
import { REJOIN_MS } from "../../worker/site/link-joins.ts";
import { later } from "./clock.ts";
import { auditUntil, call, createSite, openBrowser, openConsole, signIn, TestSocket, type TestConnector, upgrade, userSession, welcomedConnector } from "./helpers.ts";
import { hibernate } from "./hibernate.ts";

let n = 0;

type Notice = { type: string; [k: string]: unknown };

/** The next notice of `type` on a credit viewer's socket (others skipped). */
async function nextNotice(s: TestSocket, type: string): Promise<Notice> {
  for (;;) {
    const m = await s.next();
    if (typeof m !== "string") continue;
    const notice = JSON.parse(m) as Notice;
    if (notice.type === type) return notice;
  }
}

/** A console that finished OPEN: the connector answered OPEN_OK. */
async function opened(wsUrl: string, connector: TestConnector): Promise<TestSocket> {
  const s = await openBrowser(wsUrl, CREDIT_SUBPROTOCOL);
  // CLOSEs for consoles that ended before may come first.
  let open = await connector.nextFrame();
  while (open.type === FrameType.close) open = await connector.nextFrame();
  expect(open.type).toBe(FrameType.open);
  connector.send(encodeOpenOk(open.stream));
  return s;
}

async function setup(extra: Record<string, unknown> = {}) {
  const admin = await signIn();
  const operator = await userSession(admin, `joinop${++n}`, "operator");
  const site = `joins${n}`;
  const connector = await welcomedConnector(await createSite(admin, site));
  const res = await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", approval: true, ...extra }, operator);
  expect(res.status).toBe(201);
  const link = (await res.json()) as { id: string; url: string; wsUrl: string; pin?: string };
  const secret = decodeURIComponent(new URL(link.url).hash.slice(1));
  const stub = env.SITE.get(env.SITE.idFromName(site));
  return { admin, operator, site, connector, link, secret, stub };
}

function ask(site: string, secret: string, body: unknown): Promise<Response> {
  return call("POST", `/l/${site}/join`, body, { "X-Porthole-Link": secret });
}

async function look(site: string, secret: string, id: string, token: string) {
  const res = await call("GET", `/l/${site}/join/${id}`, undefined, { "X-Porthole-Link": secret, "X-Porthole-Join": token });
  return { status: res.status, body: (await res.json()) as { state?: string; pass?: string; message?: string; error?: { code: string } } };
}

async function asked(site: string, secret: string, name: string) {
  const res = await ask(site, secret, { name });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; token: string; expiresAt: string; vm: string };
}

const linkPath = (wsUrl: string, pass?: string) => `${new URL(wsUrl).pathname}${new URL(wsUrl).search}${pass ? `&pass=${encodeURIComponent(pass)}` : ""}`;

async function refused(path: string): Promise<{ code: number; reason: string }> {
  const res = await upgrade(path);
  expect(res.status).toBe(101);
  return new TestSocket(res.webSocket!).closedWith();
}

describe("share links that ask before each viewer joins", () => {
  it("keep the viewer without a socket until someone in control allows; the pass is single use and names the viewer", async () => {
    const { admin, operator, site, connector, link, secret } = await setup();
    const mine = await opened((await openConsole(admin, site)).wsUrl, connector);
    const status = (await (await call("GET", `/l/${site}/status`, undefined, { "X-Porthole-Link": secret })).json()) as { approval: boolean };
    expect(status.approval).toBe(true);
    // The link's socket opens nothing by itself.
    expect(await refused(linkPath(link.wsUrl))).toMatchObject({ code: CloseCode.unauthorized, reason: expect.stringMatching(/asks before each viewer joins/) });

    const ana = await asked(site, secret, "  Ana Müller  ");
    expect(ana.vm).toBe("Desktop");
    expect(await nextNotice(mine, "join_request")).toMatchObject({ id: ana.id, link: link.id, name: "Ana Müller", vm: "Desktop", viewOnly: true });
    expect((await look(site, secret, ana.id, ana.token)).body).toMatchObject({ state: "waiting", message: expect.stringMatching(/^Waiting/) });
    // Someone else's token, or none, learns nothing.
    expect((await look(site, secret, ana.id, "not-the-token")).status).toBe(404);
    // The list shows who waits, for its creator and admins.
    const listed = (await (await call("GET", "/api/links", undefined, operator)).json()) as { id: string; approval: boolean; waiting: { name: string }[] }[];
    expect(listed.find((l) => l.id === link.id)).toMatchObject({ approval: true, waiting: [{ name: "Ana Müller" }] });

    // A view-only person may not let anyone in; an unknown request is a 404.
    const viewer = await userSession(admin, `joinview${n}`, "viewer");
    expect((await call("POST", `/api/links/${link.id}/joins/${ana.id}/allow`, undefined, viewer)).status).toBe(403);
    expect((await call("POST", `/api/links/${link.id}/joins/nope/allow`, undefined, admin)).status).toBe(404);

    const allow = await call("POST", `/api/links/${link.id}/joins/${ana.id}/allow`, undefined, admin);
    expect(allow.status).toBe(200);
    expect(await allow.json()).toEqual({ id: ana.id, name: "Ana Müller", state: "allowed" });
    expect(await nextNotice(mine, "join_answered")).toMatchObject({ id: ana.id, outcome: "allowed", by: "admin" });
    expect((await call("POST", `/api/links/${link.id}/joins/${ana.id}/deny`, undefined, admin)).status).toBe(409);

    const got = await look(site, secret, ana.id, ana.token);
    expect(got.body).toMatchObject({ state: "allowed" });
    expect(got.body.pass).toBeTruthy();
    // Handed out once.
    expect((await look(site, secret, ana.id, ana.token)).body).toMatchObject({ state: "used" });
    expect((await look(site, secret, ana.id, ana.token)).body.pass).toBeUndefined();

    await opened(`ws://porthole.test${linkPath(link.wsUrl, got.body.pass)}`, connector);
    expect((await refused(linkPath(link.wsUrl, got.body.pass))).code).toBe(CloseCode.unauthorized);
    const sessions = (await (await call("GET", "/api/sessions", undefined, admin)).json()) as { site: string; watcher: string }[];
    expect(sessions.filter((s) => s.site === site).map((s) => s.watcher).sort()).toEqual(["admin", "link: Ana Müller"]);
    await auditUntil(admin, `?type=link.join_allowed&site=${site}`, (rows) => (rows.length === 1 && rows[0]!.actor === "admin") || undefined);
    await auditUntil(admin, `?type=link.join_asked&site=${site}`, (rows) => rows.length === 1 || undefined);
  });

  it("say no on Deny, and check the name, the link and how many wait", async () => {
    const { admin, site, connector, link, secret } = await setup();
    const mine = await opened((await openConsole(admin, site)).wsUrl, connector);
    for (const name of ["", "   ", "x".repeat(61), "two\nlines", 42]) expect((await ask(site, secret, { name })).status).toBe(400);
    expect((await ask(site, "not-a-secret", { name: "Bo" })).status).toBe(404);

    const bo = await asked(site, secret, "Bo");
    await nextNotice(mine, "join_request");
    expect((await call("POST", `/api/links/${link.id}/joins/${bo.id}/deny`, undefined, admin)).status).toBe(200);
    expect(await nextNotice(mine, "join_answered")).toMatchObject({ id: bo.id, outcome: "denied" });
    expect((await look(site, secret, bo.id, bo.token)).body).toMatchObject({ state: "denied", message: expect.stringMatching(/said no/) });
    await auditUntil(admin, `?type=link.join_denied&site=${site}`, (rows) => rows.length === 1 || undefined);

    // Five may wait at once; the sixth is told to come back.
    for (let i = 0; i < 5; i++) await asked(site, secret, `Guest ${i}`);
    const sixth = await ask(site, secret, { name: "Guest 5" });
    expect(sixth.status).toBe(429);

    // A link that does not ask says so.
    const plain = (await (await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk" }, admin)).json()) as { url: string };
    expect((await ask(site, decodeURIComponent(new URL(plain.url).hash.slice(1)), { name: "Cy" })).status).toBe(400);
  });

  it("say no when nobody answers in two minutes, by the alarm, across hibernation", async () => {
    const { admin, site, connector, link, secret, stub } = await setup();
    const mine = await opened((await openConsole(admin, site)).wsUrl, connector);
    const cy = await asked(site, secret, "Cy");
    await nextNotice(mine, "join_request");
    // The alarm is set for the deadline (no later).
    const alarm = await runInDurableObject(stub, (_o, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(Date.parse(cy.expiresAt));

    await hibernate(stub);
    await later(JOIN_WAIT_MS + 1000, async () => {
      expect(await runDurableObjectAlarm(stub)).toBe(true);
    });
    expect(await nextNotice(mine, "join_answered")).toMatchObject({ id: cy.id, outcome: "timed_out" });
    expect((await look(site, secret, cy.id, cy.token)).body).toMatchObject({ state: "timed_out", message: expect.stringMatching(/Nobody answered within 2 minutes/) });
    expect((await call("POST", `/api/links/${link.id}/joins/${cy.id}/allow`, undefined, admin)).status).toBe(409);
    await auditUntil(admin, `?type=link.join_timed_out&site=${site}`, (rows) => rows.length === 1 || undefined);
  });

  it("let a request asked before hibernation be allowed after it", async () => {
    const { admin, site, connector, link, secret, stub } = await setup();
    const dee = await asked(site, secret, "Dee");
    // Nothing else is timed on this site: the alarm is the request's deadline.
    expect(await runInDurableObject(stub, (_o, state) => state.storage.getAlarm())).toBe(Date.parse(dee.expiresAt));
    await hibernate(stub);
    // Someone in control who opens the console later hears who is waiting.
    const mine = await opened((await openConsole(admin, site)).wsUrl, connector);
    expect(await nextNotice(mine, "join_request")).toMatchObject({ id: dee.id, name: "Dee" });
    await hibernate(stub);
    expect((await call("POST", `/api/links/${link.id}/joins/${dee.id}/allow`, undefined, admin)).status).toBe(200);
    const got = await look(site, secret, dee.id, dee.token);
    await opened(`ws://porthole.test${linkPath(link.wsUrl, got.body.pass)}`, connector);
  });

  it("tell only people in control: not view-only consoles, not link viewers (even with control)", async () => {
    const { admin, site, connector, secret } = await setup();
    const viewer = await userSession(admin, `joinview${n}`, "viewer");
    const watching = await opened((await openConsole(viewer, site)).wsUrl, connector);
    const full = (await (await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", viewOnly: false }, admin)).json()) as { wsUrl: string };
    const guest = await opened(full.wsUrl, connector);
    const mine = await opened((await openConsole(admin, site)).wsUrl, connector);
    await asked(site, secret, "Eve");
    await nextNotice(mine, "join_request");
    // A console opening after the request reaches everyone on the VM (watching): by then the
    // others would have had the request too, had it been sent to them.
    watching.keepWatching = true;
    guest.keepWatching = true;
    await opened((await openConsole(admin, site)).wsUrl, connector);
    for (const s of [watching, guest]) {
      const seen: Notice[] = [];
      for (;;) {
        const m = await s.next();
        if (typeof m !== "string") continue;
        const notice = JSON.parse(m) as Notice;
        seen.push(notice);
        if (notice.type === "watching" && notice.joined === "admin" && (notice.people as unknown[]).length === 4) break;
      }
      expect(seen.filter((x) => x.type === "join_request")).toEqual([]);
    }
  });

  it("turn waiting viewers away when the link is revoked, and take a PIN first when it has one", async () => {
    const { admin, operator, site, connector, link, secret } = await setup({ pin: true });
    const mine = await opened((await openConsole(admin, site)).wsUrl, connector);
    // The PIN first: without its pass, or with a made-up one, nobody gets on the list.
    expect((await ask(site, secret, { name: "Fay" })).status).toBe(403);
    expect((await ask(site, secret, { name: "Fay", pass: "made-up" })).status).toBe(403);
    const pinned = await call("POST", `/l/${site}/pin`, { pin: link.pin }, { "X-Porthole-Link": secret });
    const { pass } = (await pinned.json()) as { pass: string };
    const fay = (await (await ask(site, secret, { name: "Fay", pass })).json()) as { id: string; token: string };
    await nextNotice(mine, "join_request");
    // The PIN's pass is spent, and would not open the socket of a link that asks anyway.
    const again = (await (await call("POST", `/l/${site}/pin`, { pin: link.pin }, { "X-Porthole-Link": secret })).json()) as { pass: string };
    expect((await refused(linkPath(link.wsUrl, again.pass))).code).toBe(CloseCode.unauthorized);

    expect((await call("DELETE", `/api/links/${link.id}`, undefined, operator)).status).toBe(204);
    expect(await nextNotice(mine, "join_answered")).toMatchObject({ id: fay.id, outcome: "ended" });
    expect((await look(site, secret, fay.id, fay.token)).body.error?.code).toBe("link_revoked");
  });

  it("let a viewer whose console dropped back once without asking, for a minute; not one whose console someone ended", async () => {
    const { admin, site, connector, link, secret } = await setup();
    const gil = await asked(site, secret, "Gil");
    expect((await call("POST", `/api/links/${link.id}/joins/${gil.id}/allow`, undefined, admin)).status).toBe(200);
    const first = await look(site, secret, gil.id, gil.token);
    const watching = await opened(`ws://porthole.test${linkPath(link.wsUrl, first.body.pass)}`, connector);
    // While the console lives, the request gives nothing more.
    expect((await look(site, secret, gil.id, gil.token)).body).toMatchObject({ state: "used" });

    // The viewer's side drops: back once, without anyone asked.
    watching.ws.close(1000, "network blip");
    expect((await connector.nextFrame()).type).toBe(FrameType.close); // the edge saw the drop
    const back = (await look(site, secret, gil.id, gil.token)).body;
    expect(back.state).toBe("allowed");
    expect(back.pass).toBeTruthy();
    expect((await look(site, secret, gil.id, gil.token)).body).toMatchObject({ state: "used" });
    await opened(`ws://porthole.test${linkPath(link.wsUrl, back.pass)}`, connector);

    // Someone ends that console: no way back on this request.
    const sessions = (await (await call("GET", "/api/sessions", undefined, admin)).json()) as { id: string; site: string }[];
    const mine = sessions.find((s) => s.site === site)!;
    expect((await call("DELETE", `/api/sessions/${mine.id}`, undefined, admin)).status).toBe(204);
    await connector.nextFrame();
    expect((await look(site, secret, gil.id, gil.token)).body).toMatchObject({ state: "used" });
  });

  it("let a yes be collected within two minutes, not later", async () => {
    const { admin, site, link, secret } = await setup();
    const jo = await asked(site, secret, "Jo");
    expect((await call("POST", `/api/links/${link.id}/joins/${jo.id}/allow`, undefined, admin)).status).toBe(200);
    const late = await later(JOIN_WAIT_MS + 1000, () => look(site, secret, jo.id, jo.token));
    expect(late.body).toMatchObject({ state: "timed_out" });
    expect(late.body.pass).toBeUndefined();
  });

  it("keep a dropped viewer's seat for a minute only", async () => {
    const { admin, site, connector, link, secret } = await setup();
    const hal = await asked(site, secret, "Hal");
    expect((await call("POST", `/api/links/${link.id}/joins/${hal.id}/allow`, undefined, admin)).status).toBe(200);
    const viewer = await opened(`ws://porthole.test${linkPath(link.wsUrl, (await look(site, secret, hal.id, hal.token)).body.pass)}`, connector);
    viewer.ws.close(1000, "gone for lunch");
    expect((await connector.nextFrame()).type).toBe(FrameType.close); // the edge saw the drop
    const late = await later(REJOIN_MS + 1000, () => look(site, secret, hal.id, hal.token));
    expect(late.body).toMatchObject({ state: "used" });
    expect(late.body.pass).toBeUndefined();
  });

  it("never open a console socket with a link's pass, a PIN's or a let-in viewer's", async () => {
    const { admin, site, link, secret } = await setup({ pin: true, viewOnly: false });
    const consoleSocket = (pass: string) => `/ws/console/${site}?ticket=${encodeURIComponent(pass)}`;
    const pinPass = async () => ((await (await call("POST", `/l/${site}/pin`, { pin: link.pin }, { "X-Porthole-Link": secret })).json()) as { pass: string }).pass;
    // The PIN's pass: past the PIN, but nobody was asked.
    expect(await refused(consoleSocket(await pinPass()))).toMatchObject({ code: CloseCode.unauthorized, reason: expect.stringMatching(/share link's pass/) });
    // A let-in viewer's pass: only on the link, whose end and limits then hold.
    const ivy = (await (await ask(site, secret, { name: "Ivy", pass: await pinPass() })).json()) as { id: string; token: string };
    expect((await call("POST", `/api/links/${link.id}/joins/${ivy.id}/allow`, undefined, admin)).status).toBe(200);
    const { pass } = (await look(site, secret, ivy.id, ivy.token)).body;
    expect((await refused(consoleSocket(pass!))).code).toBe(CloseCode.unauthorized);
  });
});
