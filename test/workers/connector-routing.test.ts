/**
 * Which connector a new console goes to, and what a person is told when none can take it: long
 * or broken inventories, unreachable hypervisors, stopping and silent connectors, capabilities.
 */
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeJson, FrameType } from "../../shared/protocol/frames.ts";
import { CAPABILITIES } from "../../shared/protocol/messages.ts";
import pkg from "../../package.json" with { type: "json" };
import { auditUntil, call, connectConnector, createSite, defaultHello, INVENTORY, openBrowser, openConsole, signIn, type TestConnector, welcomedConnector } from "./helpers.ts";
import { later } from "./clock.ts";

let n = 0;
async function site() {
  const cookie = await signIn();
  const name = `route${++n}`;
  return { cookie, name, token: await createSite(cookie, name) };
}

async function welcomed(token: string, hello: Record<string, unknown>): Promise<{ c: TestConnector; welcome: Record<string, unknown> }> {
  const c = await connectConnector(token, { ...defaultHello(), ...hello });
  const f = await c.nextFrame();
  expect(f.type).toBe(FrameType.welcome);
  return { c, welcome: (f as { json: Record<string, unknown> }).json };
}

describe("inventories the edge cannot take as they are", () => {
  it("shortens a VM name of 400 characters (non-ASCII) instead of dropping the connector", async () => {
    const s = await site();
    const long = "ВМ-🚀-".repeat(80); // 400 UTF-16 units, with surrogate pairs
    const { c } = await welcomed(s.token, {
      hypervisors: [{ ...INVENTORY[0], vms: [{ id: "desk", name: long, powerState: "running" }] }],
    });
    const vms = (await (await call("GET", `/api/sites/${s.name}/vms`, undefined, s.cookie)).json()) as { name: string }[];
    expect(vms).toHaveLength(1);
    expect(vms[0]!.name.length).toBeLessThanOrEqual(256);
    expect(vms[0]!.name.endsWith("…")).toBe(true);
    expect(long.startsWith(vms[0]!.name.slice(0, -1))).toBe(true);
    expect(c.closed).toBeNull();
    // The same from a later INVENTORY frame, with a 5,000-character hypervisor error.
    c.send(encodeJson(FrameType.inventory, 0, { hypervisors: [{ name: "lab", type: "vnc", reachable: false, error: "x".repeat(5000), vms: [] }] }));
    const sites = await waitForSites(s.cookie, (list) => list.find((x) => x.name === s.name)?.connectors[0]?.hypervisors[0]?.reachable === false);
    const hv = sites.find((x) => x.name === s.name)!.connectors[0]!.hypervisors[0]!;
    expect(hv.error!.length).toBeLessThanOrEqual(512);
    expect(c.closed).toBeNull();
  });

  it("a hypervisor entry that cannot be read is shown unreachable; the others keep working", async () => {
    const s = await site();
    await welcomed(s.token, {
      hypervisors: [INVENTORY[0], { name: "pool", type: "xenserver", reachable: true, vms: [{ id: "", name: 5, powerState: "on fire" }] }],
    });
    const sites = (await (await call("GET", "/api/sites", undefined, s.cookie)).json()) as SiteList;
    const hvs = sites.find((x) => x.name === s.name)!.connectors[0]!.hypervisors;
    expect(hvs.map((h) => [h.name, h.reachable])).toEqual([["lab", true], ["pool", false]]);
    expect(hvs[1]!.error).toMatch(/cannot read/);
    const res = await call("POST", "/api/consoles", { site: s.name, hypervisor: "lab", vm: "desk" }, s.cookie);
    expect(res.status).toBe(201);
  });
});

describe("why a console cannot open", () => {
  it("names the hypervisor's own error when it is unreachable", async () => {
    const s = await site();
    await welcomed(s.token, {
      hypervisors: [{ name: "pool", type: "xenserver", reachable: false, error: "the certificate of 10.0.0.5 does not match the pinned fingerprint", vms: [] }],
    });
    const res = await call("POST", "/api/consoles", { site: s.name, hypervisor: "pool", vm: "0000-uuid" }, s.cookie);
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("hypervisor_unreachable");
    expect(body.error.message).toMatch(/pool is unreachable: the certificate of 10\.0\.0\.5 does not match/);
  });

  it("a draining connector takes no new consoles; another connector does, or the person is told it is stopping", async () => {
    const s = await site();
    const { c: a } = await welcomed(s.token, {});
    a.send(encodeJson(FrameType.inventory, 0, { hypervisors: INVENTORY, draining: true }));
    await waitForSites(s.cookie, (list) => list.find((x) => x.name === s.name)?.connectors[0]?.draining === true);
    const refused = await call("POST", "/api/consoles", { site: s.name, hypervisor: "lab", vm: "desk" }, s.cookie);
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/stopping/);

    const b = await welcomedConnector(s.token);
    const browser = await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    expect((await b.nextFrame()).type).toBe(FrameType.open);
    expect(a.pending()).toBe(0);
    expect(browser.closed).toBeNull();
  });

  it("prefers a connector heard from recently over one that went silent", async () => {
    const s = await site();
    const live = await welcomedConnector(s.token);
    await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    expect((await live.nextFrame()).type).toBe(FrameType.open);
    // `silent` has fewer consoles, so fewest-streams alone would pick it.
    const silent = await welcomedConnector(s.token);
    // 25 s later: only `live` has said anything since (a heartbeat the runtime answers counts the same).
    await later(25_000, async () => {
      live.send(encodeJson(FrameType.inventory, 0, { hypervisors: INVENTORY }));
      await waitForSites(s.cookie, () => true);
      await openBrowser((await openConsole(s.cookie, s.name)).wsUrl);
    });
    expect((await live.nextFrame()).type).toBe(FrameType.open);
    expect(silent.pending()).toBe(0);
  });
});

describe("versions", () => {
  it("flags a connector older than the edge, in GET /api/sites and the audit trail; a current one is not", async () => {
    const s = await site();
    await welcomed(s.token, { software: "porthole-connector/0.1.0", hostname: "old-box" });
    await welcomed(s.token, { software: `porthole-connector/${pkg.version}`, hostname: "new-box", capabilities: [...CAPABILITIES] });
    const list = (await (await call("GET", "/api/sites", undefined, s.cookie)).json()) as { name: string; connectors: { hostname: string; version: string; outdated?: string }[] }[];
    const connectors = list.find((x) => x.name === s.name)!.connectors;
    const old = connectors.find((c) => c.hostname === "old-box")!;
    expect(old).toMatchObject({ version: "0.1.0", software: "porthole-connector/0.1.0" });
    expect(old.outdated).toMatch(/older than this edge.*lacks request, drain, ack: update the connector/);
    expect(connectors.find((c) => c.hostname === "new-box")!.outdated).toBeUndefined();
    const row = await auditUntil(s.cookie, `?type=connector.outdated&site=${s.name}`, (rows) => rows[0]);
    expect(row.detail).toMatchObject({ software: "porthole-connector/0.1.0", edge: pkg.version });
  });
});

describe("capabilities", () => {
  it("WELCOME accepts the capabilities both sides know, and ignores unknown ones", async () => {
    const s = await site();
    const { welcome } = await welcomed(s.token, { capabilities: [...CAPABILITIES, "teleport"] });
    expect(welcome.capabilities).toEqual([...CAPABILITIES]);
  });

  it("never sends REQUEST to a connector that did not announce it; the person is told to update it", async () => {
    const cookie = await signIn();
    const name = `route${++n}`;
    const token = await createSite(cookie, name);
    const c = await connectConnector(token, {
      ...defaultHello(),
      hypervisors: [{ name: "tower", type: "cloudtower", reachable: true, vms: [{ id: "vm1", name: "VM 1", powerState: "running" }] }],
    });
    expect((await c.nextFrame()).type).toBe(FrameType.welcome);
    const res = await call("POST", "/api/vnc-urls", { site: name, hypervisor: "tower", vm: "vm1" }, cookie);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("connector_outdated");
    expect(c.pending()).toBe(0);
    expect(c.closed).toBeNull();
  });
});

type SiteList = { name: string; connectors: { draining: boolean; hypervisors: { name: string; reachable: boolean; error?: string }[] }[] }[];

async function waitForSites(cookie: string, ok: (list: SiteList) => boolean): Promise<SiteList> {
  for (let i = 0; i < 100; i++) {
    const list = (await (await call("GET", "/api/sites", undefined, cookie)).json()) as SiteList;
    if (ok(list)) return list;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("the site list never showed what was expected");
}

void CloseCode;
