/** Issue 10: access that ends when it should — people, connector tokens, sites and the audit trail. */
import { env, evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import {
  auditUntil,
  call,
  connectConnector,
  createSite,
  defaultHello,
  openBrowser,
  signIn,
  type TestConnector,
  type TestSocket,
  upgrade,
  userSession,
  welcomedConnector,
} from "./helpers.ts";
import { accessHeader } from "./access-jwt.ts";

let n = 0;

async function setup(role: "operator" | "admin" = "operator") {
  const admin = await signIn();
  const name = `person${++n}`;
  const password = `pw-${name}-0123456789`;
  const cookie = await userSession(admin, name, role);
  const site = `access${n}`;
  const token = await createSite(admin, site);
  const connector = await welcomedConnector(token);
  return { admin, name, password, cookie, site, token, connector };
}

/** Opens a console socket and plays the connector's OPEN_OK. */
async function joined(wsUrl: string, connector: TestConnector): Promise<TestSocket> {
  const browser = await openBrowser(wsUrl);
  let open = await connector.nextFrame();
  // CLOSEs of consoles the edge just ended may come first.
  while (open.type === FrameType.close) open = await connector.nextFrame();
  expect(open.type).toBe(FrameType.open);
  connector.send(encodeOpenOk(open.stream));
  return browser;
}

async function ticket(cookie: string, site: string): Promise<{ wsUrl: string; viewOnly: boolean }> {
  const res = await call("POST", "/api/consoles", { site, hypervisor: "lab", vm: "desk" }, cookie);
  expect(res.status).toBe(201);
  return res.json();
}

async function link(cookie: string, site: string, viewOnly = false): Promise<{ id: string; url: string; wsUrl: string }> {
  const res = await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", viewOnly }, cookie);
  expect(res.status).toBe(201);
  return res.json();
}

async function linkStatus(url: string): Promise<number> {
  const u = new URL(url);
  return (await call("GET", `${u.pathname}/status`, undefined, { "X-Porthole-Link": u.hash.slice(1) })).status;
}

async function apiToken(cookie: string): Promise<Record<string, string>> {
  const { token } = (await (await call("POST", "/api/tokens", { name: "mine" }, cookie)).json()) as { token: string };
  return { Authorization: `Bearer ${token}` };
}

describe("deleting a user", () => {
  it("ends their sessions, tokens, live consoles (with a reason), unredeemed tickets and share links at once", async () => {
    const { admin, name, cookie, site, connector } = await setup();
    const bearer = await apiToken(cookie);
    const typing = await joined((await ticket(cookie, site)).wsUrl, connector);
    const spare = await ticket(cookie, site); // got just before the deletion
    const shared = await link(cookie, site);
    const outsider = await joined(shared.wsUrl, connector);

    expect((await call("DELETE", `/api/users/${name}`, undefined, admin)).status).toBe(204);

    expect(await typing.closedWith(2000)).toEqual({ code: CloseCode.gone, reason: "Your access was removed by admin." });
    expect(await outsider.closedWith(2000)).toMatchObject({ code: CloseCode.gone, reason: expect.stringMatching(/revoked/) });
    const late = await openBrowser(spare.wsUrl);
    expect((await late.closedWith()).code).toBe(CloseCode.unauthorized);
    expect(await linkStatus(shared.url)).toBe(410);
    const again = await openBrowser(shared.wsUrl);
    expect(await again.closedWith()).toMatchObject({ code: CloseCode.gone });
    expect((await call("GET", "/api/sites", undefined, cookie)).status).toBe(401);
    expect((await call("GET", "/api/sites", undefined, bearer)).status).toBe(401);
    await auditUntil(admin, `?type=access.ended&site=${site}`, (rows) => rows.find((r) => r.detail?.consoles === 1 && r.detail?.tickets === 1 && r.detail?.links === 1));
  });

  it("leaves a new user with the same name nothing of the old one's", async () => {
    const { admin, name, password, cookie, site } = await setup();
    const old = await link(cookie, site);
    expect((await call("DELETE", `/api/users/${name}`, undefined, admin)).status).toBe(204);
    // Even an admin-side listing shows the old link revoked; the newcomer sees and revokes nothing of it.
    expect((await call("POST", "/api/users", { username: name, password, role: "operator" }, admin)).status).toBe(201);
    const newcomer = await signIn(name, password);
    const theirs = (await (await call("GET", "/api/links", undefined, newcomer)).json()) as { id: string }[];
    expect(theirs.map((l) => l.id)).not.toContain(old.id);
    expect((await call("DELETE", `/api/links/${old.id}`, undefined, newcomer)).status).toBe(404);
    const tokens = (await (await call("GET", "/api/tokens", undefined, newcomer)).json()) as unknown[];
    expect(tokens).toEqual([]);
    // Their own links are theirs.
    const mine = await link(newcomer, site);
    expect(((await (await call("GET", "/api/links", undefined, newcomer)).json()) as { id: string }[]).map((l) => l.id)).toEqual([mine.id]);
  });
});

describe("PATCH /api/users/:username", () => {
  it("validates with clear 400s and guards the built-in and one's own account", async () => {
    const { admin, name, cookie } = await setup();
    const bad: [unknown, RegExp][] = [
      [{}, /role, password or disabled/],
      [{ role: "root" }, /role is admin, operator, viewer, member or auditor/],
      [{ password: "short" }, /at least 12/],
      [{ disabled: "yes" }, /disabled/],
      [{ nickname: "x" }, /nickname|unrecognized/i],
    ];
    for (const [body, message] of bad) {
      const res = await call("PATCH", `/api/users/${name}`, body, admin);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
    }
    expect((await call("PATCH", "/api/users/nobody", { role: "viewer" }, admin)).status).toBe(404);
    expect((await call("PATCH", "/api/users/admin", { role: "viewer" }, admin)).status).toBe(409);
    expect((await call("PATCH", `/api/users/${name}`, { role: "viewer" }, cookie)).status).toBe(403);
  });

  it("disabling ends everything at once and refuses the right password; enabling gives sign-in back", async () => {
    const { admin, name, password, cookie, site, connector } = await setup();
    const bearer = await apiToken(cookie);
    const typing = await joined((await ticket(cookie, site)).wsUrl, connector);
    const shared = await link(cookie, site);
    const res = await call("PATCH", `/api/users/${name}`, { disabled: true }, admin);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ username: name, role: "operator", disabled: true });
    expect(await typing.closedWith(2000)).toEqual({ code: CloseCode.gone, reason: "Your access was removed by admin." });
    expect(await linkStatus(shared.url)).toBe(410);
    expect((await call("GET", "/api/sites", undefined, cookie)).status).toBe(401);
    expect((await call("GET", "/api/sites", undefined, bearer)).status).toBe(401);
    expect((await call("POST", "/api/session", { username: name, password })).status).toBe(401);
    expect((await call("PATCH", `/api/users/${name}`, { disabled: false }, admin)).status).toBe(200);
    const back = await signIn(name, password);
    await joined((await ticket(back, site)).wsUrl, connector);
  });

  it("lowering to viewer ends full control at once; view-only consoles stay", async () => {
    const { admin, name, cookie, site, connector } = await setup();
    const typing = await joined((await ticket(cookie, site)).wsUrl, connector);
    const shared = await link(cookie, site, true);
    expect((await call("PATCH", `/api/users/${name}`, { role: "viewer" }, admin)).status).toBe(200);
    expect(await typing.closedWith(2000)).toEqual({ code: CloseCode.gone, reason: "Your role was changed to viewer by admin: full control ended." });
    expect(await linkStatus(shared.url)).toBe(410);
    // The same session, now a viewer: no more links, and consoles are view-only.
    expect((await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk" }, cookie)).status).toBe(403);
    const watching = await ticket(cookie, site);
    expect(watching.viewOnly).toBe(true);
    const view = await joined(watching.wsUrl, connector);
    // Lowering again (viewer → viewer) or another change leaves the view-only console alone.
    expect((await call("PATCH", `/api/users/${name}`, { password: "another long password" }, admin)).status).toBe(200);
    expect(view.closed).toBeNull();
  });

  it("a lowered admin loses admin routes on the next request of an existing session", async () => {
    const { admin, name, cookie } = await setup("admin");
    expect((await call("GET", "/api/users", undefined, cookie)).status).toBe(200);
    expect((await call("PATCH", `/api/users/${name}`, { role: "operator" }, admin)).status).toBe(200);
    expect((await call("GET", "/api/users", undefined, cookie)).status).toBe(403);
  });

  it("a new password ends the user's sessions", async () => {
    const { admin, name, cookie } = await setup();
    expect((await call("PATCH", `/api/users/${name}`, { password: "a brand new password" }, admin)).status).toBe(200);
    expect((await call("GET", "/api/sites", undefined, cookie)).status).toBe(401);
    await signIn(name, "a brand new password");
  });
});

describe("connector tokens and sites", () => {
  it("rotating the token drops an impostor that joined with the leaked one, and only the new token connects", async () => {
    const { admin, cookie, site, token, connector } = await setup();
    const impostor = await connectConnector(token, { ...defaultHello(), hostname: "impostor", software: "evil/6.6.6" });
    expect((await impostor.nextFrame()).type).toBe(FrameType.welcome);
    expect((await call("POST", `/api/sites/${site}/token`, undefined, cookie)).status).toBe(403);
    const res = await call("POST", `/api/sites/${site}/token`, undefined, admin);
    expect(res.status).toBe(200);
    const { connectorToken } = (await res.json()) as { connectorToken: string };
    expect(connectorToken).toMatch(new RegExp(`^pht1\\.${site}\\.`));
    for (const c of [connector, impostor]) {
      expect(await c.closedWith(2000)).toEqual({ code: CloseCode.unauthorized, reason: "The site's connector token was rotated." });
    }
    expect((await upgrade("/connect", { Authorization: `Bearer ${token}` })).status).toBe(401);
    await welcomedConnector(connectorToken);
    expect((await call("POST", "/api/sites/nosuch/token", undefined, admin)).status).toBe(404);
    await auditUntil(admin, `?type=site.token_rotated&site=${site}`, (rows) => rows.find((r) => r.detail?.connectorsDropped === 2));
  });

  it("GET /api/sites shows each connector's hostname, version, address and connected time; the audit trail too", async () => {
    const { admin, cookie, site, token } = await setup();
    const res = await upgrade("/connect", { Authorization: `Bearer ${token}`, "CF-Connecting-IP": "203.0.113.9" });
    expect(res.status).toBe(101);
    const { TestConnector } = await import("./helpers.ts");
    const { encodeJson } = await import("../../shared/protocol/frames.ts");
    const stranger = new TestConnector(res.webSocket!);
    stranger.send(encodeJson(FrameType.hello, 0, { ...defaultHello(), hostname: "stranger", software: "porthole-connector/0.0.1" }));
    expect((await stranger.nextFrame()).type).toBe(FrameType.welcome);
    const sites = (await (await call("GET", "/api/sites", undefined, admin)).json()) as { name: string; connectors: Record<string, unknown>[] }[];
    const connectors = sites.find((s) => s.name === site)!.connectors;
    expect(connectors).toContainEqual(
      expect.objectContaining({ hostname: "stranger", version: "0.0.1", software: "porthole-connector/0.0.1", address: "203.0.113.9", connectedAt: expect.any(String) }),
    );
    expect(connectors).toContainEqual(expect.objectContaining({ hostname: "test", version: "1", software: "test/1", address: null }));
    // Addresses are for administrators.
    const asOperator = (await (await call("GET", "/api/sites", undefined, cookie)).json()) as { name: string; connectors: Record<string, unknown>[] }[];
    expect(asOperator.find((s) => s.name === site)!.connectors.every((c) => !("address" in c))).toBe(true);
    await auditUntil(admin, `?type=connector.connected&site=${site}`, (rows) =>
      rows.find((r) => r.detail?.address === "203.0.113.9" && r.detail?.software === "porthole-connector/0.0.1" && r.detail?.hostname === "stranger"),
    );
  });

  it("deleting a site closes its consoles and connectors and forgets its links, tickets and storage", async () => {
    const { admin, cookie, site, token, connector } = await setup();
    const typing = await joined((await ticket(cookie, site)).wsUrl, connector);
    const spare = await ticket(cookie, site);
    const shared = await link(cookie, site);
    expect((await call("DELETE", `/api/sites/${site}`, undefined, cookie)).status).toBe(403);
    expect((await call("DELETE", `/api/sites/${site}`, undefined, admin)).status).toBe(204);
    expect(await typing.closedWith(2000)).toEqual({ code: CloseCode.gone, reason: "This site was deleted." });
    expect((await connector.closedWith(2000)).reason).toBe("This site was deleted.");
    expect((await upgrade("/connect", { Authorization: `Bearer ${token}` })).status).toBe(404);
    expect((await upgrade(new URL(spare.wsUrl).pathname + new URL(spare.wsUrl).search)).status).toBe(404);
    expect(await linkStatus(shared.url)).toBe(404);
    const listed = (await (await call("GET", "/api/links", undefined, admin)).json()) as { id: string }[];
    expect(listed.map((l) => l.id)).not.toContain(shared.id);
    expect((await call("DELETE", `/api/sites/${site}`, undefined, admin)).status).toBe(404);
    // The name can be used again, from a clean slate.
    const fresh = await createSite(admin, site);
    await welcomedConnector(fresh);
    const stub = env.SITE.get(env.SITE.idFromName(site));
    expect(await stub.linksOf(null)).toEqual([]);
  });
});

describe("the audit trail cannot be made to forget", () => {
  const registry = () => env.REGISTRY.get(env.REGISTRY.idFromName("registry"));

  it("the lowest role creating and deleting tokens in a loop adds a bounded number of rows and pushes nothing out", async () => {
    const admin = await signIn();
    const viewer = await userSession(admin, `loop${++n}`, "viewer");
    const viewerName = `loop${n}`;
    await registry().audit({ type: "marker.old", actor: "system", detail: { n } }, Date.now() - 30 * 24 * 3600_000);
    for (let i = 0; i < 90; i++) {
      const { id } = (await (await call("POST", "/api/tokens", { name: `t${i}` }, viewer)).json()) as { id: string };
      expect((await call("DELETE", `/api/tokens/${id}`, undefined, viewer)).status).toBe(204);
    }
    const rows = await auditUntil(admin, `?actor=${viewerName}&type=token&limit=1000`, (r) =>
      r.some((x) => x.type === "token.revoked" && (x as { count?: number }).count === 30) ? r : undefined,
    );
    // 60 rows each, then one row per type with the count of the rest of the hour.
    expect(rows.filter((r) => r.type === "token.created")).toHaveLength(61);
    expect(rows.filter((r) => r.type === "token.revoked")).toHaveLength(61);
    const folded = rows.find((r) => r.type === "token.created" && (r as { count?: number }).count)! as unknown as { count: number; lastAt: string; detail: { name: string } };
    expect(folded.count).toBe(30);
    expect(folded.detail.name).toBe("t89"); // the newest event's detail is kept
    const old = (await (await call("GET", "/api/audit?type=marker.old&limit=1000", undefined, admin)).json()) as { detail: { n: number } }[];
    expect(old.some((r) => r.detail.n === n)).toBe(true);
  });

  it("prunes by time (90 days) on the registry's alarm, however few writes there were", async () => {
    const admin = await signIn();
    const tag = `prune${++n}`;
    await registry().audit({ type: "marker.ancient", actor: tag }, Date.now() - 91 * 24 * 3600_000);
    await registry().audit({ type: "marker.recent", actor: tag }, Date.now() - 89 * 24 * 3600_000);
    expect(await runDurableObjectAlarm(registry())).toBe(true);
    const rows = (await (await call("GET", `/api/audit?actor=${tag}`, undefined, admin)).json()) as { type: string }[];
    expect(rows.map((r) => r.type)).toEqual(["marker.recent"]);
  });
});

describe("requests authenticated just before access was taken away", () => {
  it("cannot get a ticket or a link just after it", async () => {
    const { admin, name, site } = await setup();
    const registry = env.REGISTRY.get(env.REGISTRY.idFromName("registry"));
    const userId = (await registry.getUser(name))!.id;
    expect((await call("PATCH", `/api/users/${name}`, { disabled: true }, admin)).status).toBe(200);
    // What the Worker would do for a request that passed authentication a moment earlier.
    const stub = env.SITE.get(env.SITE.idFromName(site));
    expect(await stub.createTicket({ hypervisor: "lab", vm: "desk", user: name, userId, viewOnly: false, reach: { role: "operator", grants: [], version: 0 } })).toMatchObject({ ok: false, status: 403 });
    expect(await stub.createLink({ hypervisor: "lab", vm: "desk", viewOnly: true, ttlMs: 60_000, user: name, userId, reach: { role: "operator", grants: [], version: 0 } })).toMatchObject({ ok: false, status: 403 });
    // Given back: consoles again.
    expect((await call("PATCH", `/api/users/${name}`, { disabled: false }, admin)).status).toBe(200);
    expect((await stub.createTicket({ hypervisor: "lab", vm: "desk", user: name, userId, viewOnly: false, reach: { role: "operator", grants: [], version: 0 } })).ok).toBe(true);
  });

  it("disabling the account of an Access user's email ends the consoles they opened through Access", async () => {
    const { admin, site, connector } = await setup();
    const email = `ext${n}@example.com`;
    const access = await accessHeader(email);
    const res = await call("POST", "/api/consoles", { site, hypervisor: "lab", vm: "desk" }, access);
    expect(res.status).toBe(201);
    const typing = await joined(((await res.json()) as { wsUrl: string }).wsUrl, connector);
    expect((await call("POST", "/api/users", { username: email, password: "long enough password", role: "operator" }, admin)).status).toBe(201);
    expect((await call("PATCH", `/api/users/${email}`, { disabled: true }, admin)).status).toBe(200);
    expect(await typing.closedWith(2000)).toEqual({ code: CloseCode.gone, reason: "Your access was removed by admin." });
    expect((await call("GET", "/api/sites", undefined, access)).status).toBe(401);
  });
});

describe("after the site object hibernated", () => {
  it("still ends a removed user's console and drops connectors of a rotated token (ids and facts live in the attachments)", async () => {
    const { admin, name, cookie, site, connector } = await setup();
    const typing = await joined((await ticket(cookie, site)).wsUrl, connector);
    const stub = env.SITE.get(env.SITE.idFromName(site));
    await evictDurableObject(stub, { webSockets: "hibernate" });
    const listed = (await (await call("GET", "/api/sites", undefined, admin)).json()) as { name: string; connectors: { software: string | null }[] }[];
    expect(listed.find((s) => s.name === site)!.connectors[0]!.software).toBe("test/1");
    expect((await call("DELETE", `/api/users/${name}`, undefined, admin)).status).toBe(204);
    expect(await typing.closedWith(2000)).toEqual({ code: CloseCode.gone, reason: "Your access was removed by admin." });
    await evictDurableObject(stub, { webSockets: "hibernate" });
    expect((await call("POST", `/api/sites/${site}/token`, undefined, admin)).status).toBe(200);
    expect((await connector.closedWith(2000)).reason).toBe("The site's connector token was rotated.");
  });
});
