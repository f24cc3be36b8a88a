/**
 * XenServer / XCP-ng through Porthole: Chromium → edge → connector → simulated pool (VMs on the
 * non-master host) → Xvnc, and every failure as a message the person sees.
 */
import { mkdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { runConnector, startConnector, writeConfig } from "../harness/connector.ts";
import { openAndReadNotice, openAndReadRed } from "../harness/console-page.ts";
import { e2eSite } from "../harness/e2e-site.ts";
import { waitFor } from "../harness/processes.ts";
import { RfbClient } from "../harness/rfb-client.ts";
import { XapiPool } from "../simulators/xapi/pool.ts";

let pool: XapiPool;
const xen = e2eSite("e2e-xen", {
  browser: true,
  prepare: async () => {
    pool = await XapiPool.start({ hosts: ["127.0.10.1", "127.0.10.2"], vncPort: xen.desktop.port });
    xen.onTeardown(() => pool.stop());
    process.env.XS_PASSWORD = "secret";
  },
  connector: (token) => ({ edge: xen.edge.url, token, hypervisors: [poolConfig()] }),
  waitForVms: true,
});
const { edge, desktop, api, name: SITE } = xen;

function poolConfig(extra: Record<string, unknown> = {}) {
  return {
    name: "pool1",
    type: "xenserver",
    url: pool.masterUrl,
    username: "root",
    passwordEnv: "XS_PASSWORD",
    tls: { fingerprint: pool.fingerprint(0) },
    ...extra,
  };
}

type SitesBody = { name: string; connectors: { hypervisors: { name: string; reachable: boolean; error?: string; vms: number }[] }[] }[];

async function hypervisorState(site: string) {
  return waitFor(`${site} hypervisor state`, async () => {
    const res = await api.call<SitesBody>("GET", "/api/sites");
    const hv = res.body.find((s) => s.name === site)?.connectors[0]?.hypervisors[0];
    return hv && hv.error !== "not contacted yet" ? hv : undefined;
  });
}

const vm = (name: string) => pool.vms.find((v) => v.name === name)!;

describe("a XenServer pool, pinned on the master", () => {
  it("lists the pool's VMs with their power state, without templates or control domains", async () => {
    const vms = await api.call<{ hypervisor: string; id: string; name: string; powerState: string }[]>("GET", `/api/sites/${SITE}/vms`);
    expect(vms.body.map((v) => [v.name, v.powerState])).toEqual([
      ["db-halted", "halted"],
      ["web-1", "running"],
      ["web-2", "running"],
    ]);
    expect(vms.body[0]).toMatchObject({ hypervisor: "pool1", id: vm("db-halted").uuid });
  });

  it("shows the desktop of a VM on the non-master host in Chromium", async () => {
    const { pageUrl } = await api.openConsole(SITE, "pool1", vm("web-1").uuid);
    mkdirSync("test-results", { recursive: true });
    const seen = await openAndReadRed(xen.browser, pageUrl, "test-results/xenserver.png");
    expect(seen).toMatchObject({ width: desktop.width, height: desktop.height });
    // The tunnel went to the member the VM runs on, verified through the master's word for its certificate.
    expect(pool.stats.connects.at(-1)!.host).toBe("127.0.10.2");
    expect(pool.stats.calls["host.get_server_certificate"]).toBeGreaterThanOrEqual(1);
  });

  it("survives a session that expires mid-life: it signs in again and opens the console", async () => {
    const logins = pool.stats.logins;
    pool.expireSessions();
    const rfb = await RfbClient.open((await api.openConsole(SITE, "pool1", vm("web-2").uuid)).wsUrl);
    expect((await rfb.handshake()).width).toBe(desktop.width);
    rfb.close();
    expect(pool.stats.logins).toBe(logins + 1);
  });

  it.each([
    [503, /one viewer per console \(503\)/],
    [403, /no role that may open consoles \(403\)/],
    [401, /refused the console session \(401\) even after signing in again/],
    ["eof-after-200", /closed it at once/],
  ] as const)("shows the person a %s from the console host", async (fault, message) => {
    pool.setConsoleFault(vm("web-1").uuid, fault);
    try {
      const { pageUrl } = await api.openConsole(SITE, "pool1", vm("web-1").uuid);
      expect(await openAndReadNotice(xen.browser, pageUrl)).toMatch(message);
    } finally {
      pool.setConsoleFault(vm("web-1").uuid, null);
    }
  });

  it("says a halted VM must be started", async () => {
    const rfb = await RfbClient.open((await api.openConsole(SITE, "pool1", vm("db-halted").uuid)).wsUrl);
    const closed = await rfb.closed();
    expect(closed.code).toBe(CloseCode.vmNotRunning);
    expect(closed.reason).toMatch(/halted: start it/);
  });

  it("--check reports reachability, the verified fingerprint, sign-in and the VM count", async () => {
    const file = writeConfig({ edge: edge.url, token: xen.token, hypervisors: [poolConfig()] });
    const check = runConnector(["--check", "--config", file], { XS_PASSWORD: "secret" });
    expect(await check.exited).toBe(0);
    const out = check.output();
    expect(out).toMatch(/^ok +pool1 \(xenserver\)$/m);
    expect(out).toContain(`TLS verified (SHA-256 ${pool.fingerprint(0)})`);
    expect(out).toMatch(/signed in as root \(JSON-RPC\)/);
    expect(out).toMatch(/3 VMs/);
  });

  it("logs out of the pool when it shuts down", async () => {
    const c = await startConnector({ edge: edge.url, token: xen.token, hypervisors: [poolConfig()] });
    await waitFor("second connector signed in", async () => (/"event":"hypervisor.ready"/.test(c.proc.output()) ? true : undefined));
    const logouts = pool.stats.logouts;
    expect(await c.stop("SIGTERM")).toBe(0);
    expect(pool.stats.logouts).toBe(logouts + 1);
  });
});

describe("XenServer configuration problems", () => {
  it("a wrong pin is reported with the fingerprint the master presented", async () => {
    const site = "e2e-xen-pin";
    const t = await api.createSite(site);
    const c = await startConnector({
      edge: edge.url,
      token: t,
      hypervisors: [poolConfig({ tls: { fingerprint: Array(32).fill("AA").join(":") } })],
    });
    try {
      const hv = await hypervisorState(site);
      expect(hv.reachable).toBe(false);
      expect(hv.error).toContain(pool.fingerprint(0));
    } finally {
      await c.stop();
    }
  });

  it("bad credentials and an unreachable pool are reported as such", async () => {
    const site = "e2e-xen-bad";
    const t = await api.createSite(site);
    const bad = runConnector(
      ["--check", "--config", writeConfig({ edge: edge.url, token: t, hypervisors: [poolConfig(), poolConfig({ name: "gone", url: "https://127.0.10.9", tls: { insecure: true } })] })],
      { XS_PASSWORD: "wrong" },
    );
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/FAIL pool1[\s\S]*rejected the connector's username or password/);
    expect(bad.output()).toMatch(/FAIL gone[\s\S]*(refused the connection|unreachable)/);
  });

  it("a pool whose certificates come from a CA works with tls: { ca }", async () => {
    const caPool = await XapiPool.start({ hosts: ["127.0.10.11", "127.0.10.12"], vncPort: desktop.port, certificates: "ca" });
    const site = "e2e-xen-ca";
    const t = await api.createSite(site);
    const caFile = writeConfig({}).replace(/connector\.yaml$/, "ca.pem");
    (await import("node:fs")).writeFileSync(caFile, caPool.caPem!);
    const c = await startConnector({
      edge: edge.url,
      token: t,
      hypervisors: [{ name: "pool2", type: "xenserver", url: caPool.masterUrl, username: "root", password: "secret", tls: { ca: caFile } }],
    });
    try {
      const web = caPool.vms.find((v) => v.name === "web-1")!;
      await waitFor("CA pool inventory", async () => ((await api.call<unknown[]>("GET", `/api/sites/${site}/vms`)).body.length > 0 ? true : undefined));
      const rfb = await RfbClient.open((await api.openConsole(site, "pool2", web.uuid)).wsUrl);
      expect((await rfb.handshake()).height).toBe(desktop.height);
      rfb.close();
    } finally {
      await c.stop();
      await caPool.stop();
    }
  });
});
