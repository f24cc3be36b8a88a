/**
 * SmartX CloudTower through Porthole: Chromium → edge → connector → simulated cluster websockify →
 * Xvnc, plus the seed's LAN URLs from POST /api/vnc-urls.
 */
import { mkdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { type RunningConnector, startConnector } from "../harness/connector.ts";
import { openAndReadNotice, openAndReadRed } from "../harness/console-page.ts";
import { e2eSite } from "../harness/e2e-site.ts";
import { waitFor } from "../harness/processes.ts";
import { RfbClient } from "../harness/rfb-client.ts";
import { CloudTower } from "../simulators/cloudtower/tower.ts";

let tower: CloudTower;
const site = e2eSite("e2e-tower", {
  browser: true,
  prepare: async () => {
    tower = await CloudTower.start({ tower: "127.0.20.1", cluster: "127.0.20.2", vncPort: site.desktop.port });
    site.onTeardown(() => tower.stop());
  },
});
const { edge, desktop, api, name: SITE } = site;
/** Each describe's connectors (each with its own TLS settings), stopped after it. */
const connectors: RunningConnector[] = [];

async function connectorWith(tls: unknown, extra: Record<string, unknown> = {}): Promise<RunningConnector> {
  const c = await startConnector({
    edge: edge.url,
    token: site.token,
    hypervisors: [{ name: "tower", type: "cloudtower", url: tower.url, username: "admin", password: "secret", tls, ...extra }],
  });
  connectors.push(c);
  return c;
}

async function stopConnectors(): Promise<void> {
  await Promise.allSettled(connectors.splice(0).map((c) => c.stop()));
}

async function vmsListed(count: number) {
  return waitFor(`${count} CloudTower VMs listed`, async () => {
    const vms = await api.call<{ id: string; name: string; powerState: string }[]>("GET", `/api/sites/${SITE}/vms`);
    return vms.body.length === count ? vms.body : undefined;
  });
}

afterAll(stopConnectors);

describe("CloudTower, certificate pinned on the tower", () => {
  beforeAll(async () => {
    await connectorWith({ fingerprint: tower.towerFingerprint() });
  });
  afterAll(stopConnectors);

  it("lists the tower's VMs with their power state, signing in with the raw token header", async () => {
    const vms = await vmsListed(3);
    expect(vms.map((v) => [v.name, v.powerState]).sort()).toEqual([
      ["archive-01", "halted"],
      ["db-01", "running"],
      ["web-01", "running"],
    ]);
    expect(tower.stats.authorizationHeaders.length).toBeGreaterThan(0);
    expect(tower.stats.authorizationHeaders.every((h) => !h.startsWith("Bearer"))).toBe(true);
  });

  it("shows a VM's desktop in Chromium, through the tower's proxy (the pin covers the tower only)", async () => {
    const web = tower.vms.find((v) => v.name === "web-01")!;
    const { pageUrl } = await api.openConsole(SITE, "tower", web.id);
    mkdirSync("test-results", { recursive: true });
    const seen = await openAndReadRed(site.browser, pageUrl, "test-results/cloudtower.png");
    expect(seen).toMatchObject({ width: desktop.width, height: desktop.height });
    const last = tower.stats.websockify.at(-1)!;
    expect(last).toMatchObject({ accepted: true, form: "proxy" });
    // The base64 token travelled percent-encoded.
    expect(last.url).toMatch(/token=[^&]*%(2B|2F|3D)/);
  });

  it("fetches fresh VNC tokens for every console session", async () => {
    const web = tower.vms.find((v) => v.name === "web-01")!;
    const before = tower.stats.vncQueries;
    for (let i = 0; i < 2; i++) {
      const rfb = await RfbClient.open((await api.openConsole(SITE, "tower", web.id)).wsUrl);
      expect((await rfb.handshake()).width).toBe(desktop.width);
      rfb.close();
    }
    expect(tower.stats.vncQueries - before).toBe(2);
  });

  it("POST /api/vnc-urls returns the seed's two LAN URLs and an edge URL that opens the console", async () => {
    const web = tower.vms.find((v) => v.name === "web-01")!;
    const res = await api.call<{ edge: string; direct: string; proxied: string }>("POST", "/api/vnc-urls", {
      site: SITE,
      hypervisor: "tower",
      vm: web.id,
    });
    expect(res.status).toBe(200);
    expect(res.body.direct).toMatch(
      new RegExp(`^wss://127\\.0\\.20\\.2/websockify/\\?uuid=${web.uuid}&token=[0-9a-f]{32}&host=${web.hostIp.replaceAll(".", "\\.")}$`),
    );
    expect(res.body.proxied).toMatch(
      new RegExp(`^wss://127\\.0\\.20\\.1/websockify/\\?token=[A-Za-z0-9%]+&uuid=${web.uuid}&host=${web.hostIp.replaceAll(".", "\\.")}$`),
    );
    expect(res.body.proxied).not.toMatch(/token=[^&]*[+/=]/);
    expect(res.body.edge).toBe(`${edge.url}/open?site=${SITE}&hypervisor=tower&vm=${web.id}`);
    // The edge URL: signed in, it redirects to a fresh console page; signed out, to the sign-in page.
    // As a browser sends it when the person opens the address themselves (another site's
    // navigation gets no ticket: the console page asks first).
    const signedIn = await api.raw(res.body.edge, { redirect: "manual", headers: { "Sec-Fetch-Site": "none" } });
    expect(signedIn.status).toBe(302);
    expect(signedIn.headers.get("location")).toMatch(/\/console#site=e2e-tower&ticket=/);
    const fromElsewhere = await api.raw(res.body.edge, { redirect: "manual", headers: { "Sec-Fetch-Site": "cross-site" } });
    expect(fromElsewhere.headers.get("location")).toMatch(/^\/console#site=e2e-tower&hypervisor=tower&vm=[^&]+&ask=1$/);
    const anon = await fetch(res.body.edge, { redirect: "manual" });
    expect(anon.headers.get("location")).toMatch(/^\/\?next=%2Fopen%3F/);
  });

  it("says a powered-off VM is off", async () => {
    const off = tower.vms.find((v) => v.name === "archive-01")!;
    const rfb = await RfbClient.open((await api.openConsole(SITE, "tower", off.id)).wsUrl);
    const closed = await rfb.closed();
    expect(closed.code).toBe(CloseCode.vmNotRunning);
    expect(closed.reason).toMatch(/powered off/);
  });

  it("signs in again when the tower's token expires", async () => {
    const logins = tower.stats.logins;
    tower.expireTokens();
    const web = tower.vms.find((v) => v.name === "web-01")!;
    const rfb = await RfbClient.open((await api.openConsole(SITE, "tower", web.id)).wsUrl);
    expect((await rfb.handshake()).height).toBe(desktop.height);
    rfb.close();
    expect(tower.stats.logins).toBe(logins + 1);
  });

  it("shows the person why websockify refused the session", async () => {
    const web = tower.vms.find((v) => v.name === "web-01")!;
    tower.refuseWebsockify = true;
    try {
      const { pageUrl } = await api.openConsole(SITE, "tower", web.id);
      expect(await openAndReadNotice(site.browser, pageUrl)).toMatch(/refused the session \(HTTP 403\)/);
    } finally {
      tower.refuseWebsockify = false;
    }
  });
});

describe("CloudTower, other TLS policies and failures", () => {
  afterAll(stopConnectors);

  it("goes straight to the cluster's websockify when TLS is not pinned (insecure, explicitly)", async () => {
    await connectorWith({ insecure: true });
    await vmsListed(3);
    const db = tower.vms.find((v) => v.name === "db-01")!;
    const rfb = await RfbClient.open((await api.openConsole(SITE, "tower", db.id)).wsUrl);
    expect((await rfb.handshake()).width).toBe(desktop.width);
    expect((await rfb.readFramebuffer()).length).toBe(desktop.width * desktop.height * 4);
    rfb.close();
    expect(tower.stats.websockify.at(-1)).toMatchObject({ accepted: true, form: "direct" });
    await stopConnectors();
  });

  it("reports a certificate mismatch with the fingerprint the tower presented", async () => {
    const wrong = Array(32).fill("00").join(":");
    const c = await connectorWith({ fingerprint: wrong });
    const sites = await waitFor("tower reported unreachable", async () => {
      const res = await api.call<{ name: string; connectors: { hypervisors: { reachable: boolean; error?: string }[] }[] }[]>("GET", "/api/sites");
      const hv = res.body.find((s) => s.name === SITE)?.connectors[0]?.hypervisors[0];
      return hv && !hv.reachable && hv.error !== "not contacted yet" ? hv : undefined;
    });
    expect(sites.error).toContain(tower.towerFingerprint());
    expect(c.proc.output()).toMatch(/"event":"hypervisor.unreachable"/);
    await stopConnectors();
  });

  it("reports bad credentials clearly", async () => {
    await connectorWith({ insecure: true }, { password: "wrong" });
    const hv = await waitFor("bad password reported", async () => {
      const res = await api.call<{ name: string; connectors: { hypervisors: { reachable: boolean; error?: string }[] }[] }[]>("GET", "/api/sites");
      const h = res.body.find((s) => s.name === SITE)?.connectors[0]?.hypervisors[0];
      return h && !h.reachable && h.error !== "not contacted yet" ? h : undefined;
    });
    expect(hv.error).toMatch(/rejected the connector's username or password/);
  });
});
