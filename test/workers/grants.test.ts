/**
 * Issue 19, as the platform runs it: a grant removed while its console is open, a grant that ends
 * while the site object hibernates, lowering that keeps view-only, a user in two groups, access
 * requests, hostile input, and auditors.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import type { AccessRequest, AuditRow, Grant } from "../../shared/api/types.ts";
import { later } from "./clock.ts";
import { auditUntil, call, createSite, openBrowser, signIn, type TestConnector, type TestSocket, userSession, welcomedConnector } from "./helpers.ts";
import { flushStreams, hibernate } from "./hibernate.ts";

let n = 0;
const DESK = { hypervisor: "lab", vm: "desk" };
const registry = () => env.REGISTRY.get(env.REGISTRY.idFromName("registry"));

async function setup(role: "member" | "viewer" = "member") {
  const admin = await signIn();
  const name = `g${++n}`;
  const cookie = await userSession(admin, name, role);
  const site = `grants${n}`;
  const connector = await welcomedConnector(await createSite(admin, site));
  return { admin, name, cookie, site, connector };
}

async function grant(admin: string, body: Record<string, unknown>): Promise<Grant> {
  const res = await call("POST", "/api/grants", body, admin);
  expect(res.status, JSON.stringify(await res.clone().json())).toBe(201);
  return res.json();
}

async function ticket(cookie: string, site: string): Promise<{ wsUrl: string; viewOnly: boolean }> {
  const res = await call("POST", "/api/consoles", { site, ...DESK }, cookie);
  expect(res.status).toBe(201);
  return res.json();
}

async function joined(wsUrl: string, connector: TestConnector): Promise<TestSocket> {
  const browser = await openBrowser(wsUrl);
  let open = await connector.nextFrame();
  while (open.type === FrameType.close) open = await connector.nextFrame();
  expect(open.type).toBe(FrameType.open);
  connector.send(encodeOpenOk(open.stream));
  return browser;
}

describe("taking a grant away", () => {
  it("closes the consoles and revokes the links only it allowed, and drops its tickets, before the call returns", async () => {
    const { admin, name, cookie, site, connector } = await setup();
    const g = await grant(admin, { user: name, site, vmPattern: "Desk*", level: "share" });
    const console = await joined((await ticket(cookie, site)).wsUrl, connector);
    const spare = await ticket(cookie, site);
    const link = (await (await call("POST", "/api/links", { site, ...DESK, viewOnly: true }, cookie)).json()) as { wsUrl: string };
    const outsider = await joined(link.wsUrl, connector);

    expect((await call("DELETE", `/api/grants/${g.id}`, undefined, admin)).status).toBe(204);
    expect(await console.closedWith(2000)).toEqual({ code: CloseCode.gone, reason: "Your access to Desktop was removed by admin." });
    expect((await outsider.closedWith(2000)).reason).toMatch(/revoked/);
    const late = await openBrowser(spare.wsUrl);
    expect((await late.closedWith(2000)).code).not.toBe(1000);
    // Nothing left to see or open.
    expect(await (await call("GET", `/api/sites/${site}/vms`, undefined, cookie)).json()).toEqual([]);
    expect((await call("POST", "/api/consoles", { site, ...DESK }, cookie)).status).toBe(404);
    await auditUntil(admin, "?type=grant.removed", (rows) => rows.some((r) => (r.detail as { id?: string }).id === g.id));
  });

  it("lowering ends full control but leaves view-only consoles open, as role lowering does", async () => {
    const { admin, name, cookie, site, connector } = await setup("viewer");
    const g = await grant(admin, { user: name, site, hypervisor: "lab", vm: "desk", level: "control" });
    const full = await ticket(cookie, site);
    expect(full.viewOnly).toBe(false);
    const typing = await joined(full.wsUrl, connector);
    expect((await call("DELETE", `/api/grants/${g.id}`, undefined, admin)).status).toBe(204);
    expect(await typing.closedWith(2000)).toEqual({ code: CloseCode.gone, reason: "Your access to Desktop was lowered by admin: full control ended." });
    // Now as the viewer role gives: view-only, and that stays when another grant goes.
    const other = await grant(admin, { user: name, site, level: "view" });
    const watching = await joined((await ticket(cookie, site)).wsUrl, connector);
    expect((await call("DELETE", `/api/grants/${other.id}`, undefined, admin)).status).toBe(204);
    // The review ran before the call returned; a round trip through the site object lets any close
    // it sent reach the viewer first.
    await flushStreams(env.SITE.get(env.SITE.idFromName(site)));
    expect(watching.closed).toBeNull();
  });

  it("a request that read the grants just before the removal gets no ticket just after it", async () => {
    const { admin, name, site } = await setup();
    const g = await grant(admin, { user: name, site, level: "control" });
    const userId = (await registry().userRef(name))!.id;
    const stale = { role: "member" as const, ...(await registry().reachOf(userId)) };
    expect((await call("DELETE", `/api/grants/${g.id}`, undefined, admin)).status).toBe(204);
    const stub = env.SITE.get(env.SITE.idFromName(site));
    expect(await stub.createTicket({ ...DESK, user: name, userId, reach: stale })).toMatchObject({ ok: false, status: 404 });
  });
});

describe("a grant's window", () => {
  it("ends at its until, from the registry's alarm set for that moment, even while the site object hibernates", async () => {
    const { admin, name, cookie, site, connector } = await setup();
    const until = Date.now() + 30_000;
    await grant(admin, { user: name, site, level: "control", until: new Date(until).toISOString() });
    // The registry's one alarm is set for exactly the grant's end (no polling).
    expect(await runInDurableObject(registry(), (_: unknown, state: DurableObjectState) => state.storage.getAlarm())).toBe(until);
    const console = await joined((await ticket(cookie, site)).wsUrl, connector);
    await hibernate(env.SITE.get(env.SITE.idFromName(site)));

    await later(30_001, async () => {
      connector.ws.send("porthole:ping");
      expect(await runDurableObjectAlarm(registry())).toBe(true);
    });
    const at = new Date(until).toISOString().slice(11, 16);
    expect(await console.closedWith(2000)).toEqual({ code: CloseCode.gone, reason: `Your access to Desktop ended at ${at} UTC.` });
    expect(await (await call("GET", "/api/grants", undefined, cookie)).json()).toEqual([]);
    await auditUntil(admin, "?type=grant.expired", (rows) => rows.some((r) => (r.detail as { user?: string }).user === name));
  });

  it("gives nothing before from, and schedules no alarm for it", async () => {
    const { admin, name, cookie, site } = await setup();
    const from = Date.now() + 60_000;
    await grant(admin, { user: name, site, level: "view", from: new Date(from).toISOString() });
    expect(await (await call("GET", `/api/sites/${site}/vms`, undefined, cookie)).json()).toEqual([]);
    // A grant starting needs nothing done: listings and tickets ask decide() with the time.
    const alarm = await runInDurableObject(registry(), (_: unknown, state: DurableObjectState) => state.storage.getAlarm());
    expect(alarm).not.toBe(from);
  });
});

describe("groups", () => {
  it("a user in two groups keeps what the other group gives; leaving both ends it", async () => {
    const { admin, name, cookie, site, connector } = await setup();
    for (const group of [`ops${n}`, `oncall${n}`]) {
      expect((await call("POST", "/api/groups", { name: group }, admin)).status).toBe(201);
      expect((await call("PUT", `/api/groups/${group}/members/${name}`, undefined, admin)).status).toBe(200);
    }
    await grant(admin, { group: `ops${n}`, site, level: "control" });
    await grant(admin, { group: `oncall${n}`, site, vmPattern: "Desk*", level: "control" });
    const console = await joined((await ticket(cookie, site)).wsUrl, connector);
    expect((await call("DELETE", `/api/groups/ops${n}/members/${name}`, undefined, admin)).status).toBe(200);
    await flushStreams(env.SITE.get(env.SITE.idFromName(site)));
    expect(console.closed).toBeNull();
    expect((await call("DELETE", `/api/groups/oncall${n}`, undefined, admin)).status).toBe(204);
    expect((await console.closedWith(2000)).reason).toBe("Your access to Desktop was removed by admin.");
    const groups = (await (await call("GET", "/api/groups", undefined, admin)).json()) as { name: string; members: string[] }[];
    expect(groups.find((g) => g.name === `ops${n}`)?.members).toEqual([]);
    await auditUntil(admin, "?type=group.member_removed", (rows) => rows.length > 0);
  });
});

describe("every site", () => {
  it("leaving a group ends its consoles in each site it reached", async () => {
    const { admin, name, cookie, site, connector } = await setup();
    const other = `${site}-b`;
    const otherConnector = await welcomedConnector(await createSite(admin, other));
    const group = `both${n}`;
    expect((await call("POST", "/api/groups", { name: group }, admin)).status).toBe(201);
    expect((await call("PUT", `/api/groups/${group}/members/${name}`, undefined, admin)).status).toBe(200);
    await grant(admin, { group, site, level: "control" });
    await grant(admin, { group, site: other, level: "view" });
    const here = await joined((await ticket(cookie, site)).wsUrl, connector);
    const there = await joined((await ticket(cookie, other)).wsUrl, otherConnector);
    await evictDurableObject(env.SITE.get(env.SITE.idFromName(other)), { webSockets: "hibernate" });
    expect((await call("DELETE", `/api/groups/${group}/members/${name}`, undefined, admin)).status).toBe(200);
    expect((await here.closedWith(2000)).reason).toBe("Your access to Desktop was removed by admin.");
    expect((await there.closedWith(2000)).reason).toBe("Your access to Desktop was removed by admin.");
  });
});

describe("hostile input", () => {
  it("gets a clear 400 and changes nothing", async () => {
    const { admin, name, site } = await setup();
    const before = await (await call("GET", "/api/grants", undefined, admin)).json();
    const bad: Record<string, unknown>[] = [
      { user: name, site, level: "view", vmPattern: "***" },
      { user: name, site, level: "view", from: "2030-01-02T00:00:00Z", until: "2030-01-01T00:00:00Z" },
      { user: name, site, level: "view", until: "2000-01-01T00:00:00Z" },
      { user: "nobody-here", site, level: "view" },
      { group: "no-such-group", site, level: "view" },
      { user: name, group: "x", site, level: "view" },
      { user: name, site, level: "root" },
      { user: name, site: "x".repeat(5000), level: "view" },
      { user: name, site, level: "view", vm: "desk" },
      { user: name, site: "no-such-site", level: "view" },
      { user: name, site, level: "view", from: "tomorrow" },
    ];
    for (const body of bad) {
      const res = await call("POST", "/api/grants", body, admin);
      expect(res.status, JSON.stringify(body).slice(0, 100)).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message.length).toBeGreaterThan(3);
    }
    expect((await call("POST", "/api/groups", { name: "g".repeat(500) }, admin)).status).toBe(400);
    expect((await call("PUT", `/api/groups/nope/members/${name}`, undefined, admin)).status).toBe(404);
    expect(await (await call("GET", "/api/grants", undefined, admin)).json()).toEqual(before);
  });
});

describe("access requests", () => {
  it("a member asks; nobody approves their own; approval is a time-boxed grant; a denial gives nothing", async () => {
    const { admin, name, cookie, site } = await setup();
    const ask = (level: string) => call("POST", "/api/access-requests", { site, ...DESK, level, minutes: 30, reason: "incident 42" }, cookie);
    const res = await ask("control");
    expect(res.status).toBe(201);
    const request = (await res.json()) as AccessRequest;
    expect(request.status).toBe("pending");
    // The member cannot decide it (not an admin); an admin cannot decide their own.
    expect((await call("POST", `/api/access-requests/${request.id}/approve`, {}, cookie)).status).toBe(403);
    const own = (await (await call("POST", "/api/access-requests", { site, ...DESK, level: "view", minutes: 5, reason: "me" }, admin)).json()) as AccessRequest;
    expect((await call("POST", `/api/access-requests/${own.id}/approve`, {}, admin)).status).toBe(403);
    const pending = (await (await call("GET", "/api/access-requests?status=pending", undefined, admin)).json()) as AccessRequest[];
    expect(pending.map((r) => r.id)).toContain(request.id);

    const approved = (await (await call("POST", `/api/access-requests/${request.id}/approve`, { comment: "ok for the incident" }, admin)).json()) as AccessRequest;
    expect(approved).toMatchObject({ status: "approved", decidedBy: "admin", comment: "ok for the incident" });
    expect((await call("POST", `/api/access-requests/${request.id}/deny`, {}, admin)).status).toBe(409);
    const mine = (await (await call("GET", "/api/grants", undefined, cookie)).json()) as Grant[];
    expect(mine).toHaveLength(1);
    expect(Date.parse(mine[0]!.until!) - Date.now()).toBeGreaterThan(29 * 60_000);
    expect(await ticket(cookie, site)).toMatchObject({ viewOnly: false });

    const denied = (await (await ask("share")).json()) as AccessRequest;
    expect((await call("POST", `/api/access-requests/${denied.id}/deny`, { comment: "no" }, admin)).status).toBe(200);
    expect((await call("POST", "/api/links", { site, ...DESK }, cookie)).status).toBe(403);
    const rows = await auditUntil(admin, "?type=access_request.denied", (r: AuditRow[]) => (r.length ? r : undefined));
    expect(rows[0]!.detail).toMatchObject({ comment: "no", user: name });
  });
});

describe("auditors", () => {
  it("read the audit trail and every live session, and open no console", async () => {
    const { admin, site, connector } = await setup();
    const operator = await userSession(admin, `op${n}`, "operator");
    await joined((await ticket(operator, site)).wsUrl, connector);
    const auditor = await userSession(admin, `aud${n}`, "auditor");
    expect((await call("GET", "/api/audit", undefined, auditor)).status).toBe(200);
    const sessions = (await (await call("GET", "/api/sessions", undefined, auditor)).json()) as { site: string }[];
    expect(sessions.some((s) => s.site === site)).toBe(true);
    expect((await call("POST", "/api/consoles", { site, ...DESK }, auditor)).status).toBe(403);
    expect(await (await call("GET", `/api/sites/${site}/vms`, undefined, auditor)).json()).toEqual([]);
  });
});

describe("what the sites remember of a person never outranks the registry", () => {
  it("an operator disabled and lowered in one change, then enabled again, is the lower role everywhere", async () => {
    const { admin, name, site } = await setup("viewer");
    const password = `pw-${name}-0123456789`;
    // Promoted: the site is told (and remembers) the operator role.
    expect((await call("PATCH", `/api/users/${name}`, { role: "operator" }, admin)).status).toBe(200);
    // Off-boarded and lowered in one change, then let back in.
    expect((await call("PATCH", `/api/users/${name}`, { role: "member", disabled: true }, admin)).status).toBe(200);
    expect((await call("PATCH", `/api/users/${name}`, { disabled: false }, admin)).status).toBe(200);
    const member = await signIn(name, password);
    // A member with no grant reaches nothing: no console, no link (not the remembered operator's).
    expect((await call("POST", "/api/consoles", { site, ...DESK }, member)).status).toBe(404);
    expect((await call("POST", "/api/links", { site, ...DESK, viewOnly: false }, member)).status).toBe(404);
  });

  it("a viewer lowered in 0.3.0 (a stored 'control' block) may use a control grant", async () => {
    const { admin, name, cookie, site } = await setup("viewer");
    // What 0.3.0 left when it lowered someone to viewer (and what the registry may still replay).
    const id = await runInDurableObject(registry(), (_o, state) => state.storage.sql.exec<{ id: string }>("SELECT id FROM users WHERE username = ?", name).one().id);
    await runInDurableObject(env.SITE.get(env.SITE.idFromName(site)), (_o, state) => {
      state.storage.sql.exec("INSERT OR REPLACE INTO blocked_users (user_id, scope) VALUES (?, 'control')", id);
    });
    await grant(admin, { user: name, site, level: "control" });
    const res = await call("POST", "/api/consoles", { site, ...DESK }, cookie);
    expect(res.status).toBe(201);
    expect(((await res.json()) as { viewOnly: boolean }).viewOnly).toBe(false);
  });

  it("a member sees only the sites its grants name", async () => {
    const { admin, name, cookie, site } = await setup();
    const other = `grants-other${n}`;
    await createSite(admin, other);
    expect(((await (await call("GET", "/api/sites", undefined, cookie)).json()) as unknown[]).length).toBe(0);
    await grant(admin, { user: name, site, level: "view" });
    const listed = (await (await call("GET", "/api/sites", undefined, cookie)).json()) as { name: string }[];
    expect(listed.map((s) => s.name)).toEqual([site]);
  });
});

describe("access requests have a bound", () => {
  it("one person may have ten waiting; the eleventh is refused and changes nothing", async () => {
    const { cookie, site } = await setup();
    const ask = () => call("POST", "/api/access-requests", { site, ...DESK, level: "view", minutes: 5, reason: "on call" }, cookie);
    for (let i = 0; i < 10; i++) expect((await ask()).status).toBe(201);
    const refused = await ask();
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/10 access requests waiting/);
    const mine = (await (await call("GET", "/api/access-requests?status=pending", undefined, cookie)).json()) as unknown[];
    expect(mine.length).toBe(10);
  });
});

describe("deleting a site", () => {
  it("takes its pending access requests with it: a new site of the same name inherits none", async () => {
    const { admin, cookie, site } = await setup();
    const asked = (await (await call("POST", "/api/access-requests", { site, ...DESK, level: "control", minutes: 5, reason: "deploy" }, cookie)).json()) as { id: string };
    expect((await call("DELETE", `/api/sites/${site}`, undefined, admin)).status).toBe(204);
    await createSite(admin, site);
    expect((await call("POST", `/api/access-requests/${asked.id}/approve`, {}, admin)).status).toBe(404);
    expect(((await (await call("GET", "/api/access-requests?status=pending", undefined, cookie)).json()) as unknown[]).length).toBe(0);
  });
});

describe("a VM's LAN addresses (POST /api/vnc-urls)", () => {
  it("follow the decision like a console: control gets them, view-only is refused, no grant sees no VM", async () => {
    const { admin, name, cookie, site } = await setup();
    const ask = () => call("POST", "/api/vnc-urls", { site, ...DESK }, cookie);
    expect((await ask()).status).toBe(404);
    const view = await grant(admin, { user: name, site, ...DESK, level: "view" });
    expect((await ask()).status).toBe(403);
    expect((await call("DELETE", `/api/grants/${view.id}`, undefined, admin)).status).toBe(204);
    await grant(admin, { user: name, site, ...DESK, level: "control" });
    const ok = await ask();
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { edge: string }).edge).toContain(`/open?site=${site}`);
  });
});
