/** The connector as an operator meets it: config errors, --check, refusals, reconnects, shutdown. */
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { runConnector, writeConfig } from "../harness/connector.ts";
import { e2eSite } from "../harness/e2e-site.ts";
import { freePort, waitFor } from "../harness/processes.ts";
import { RfbClient } from "../harness/rfb-client.ts";
import { startProxy, type TcpProxy } from "../harness/tcp-proxy.ts";

let proxy: TcpProxy;
const site = e2eSite("e2e-connector", {
  prepare: async () => {
    proxy = await startProxy(Number(new URL(site.edge.url).port));
    site.onTeardown(() => proxy.stop());
  },
});
const { edge, desktop, api, name: SITE } = site;

const lab = () => ({ name: "lab", type: "vnc", vms: [{ id: "desk", address: `127.0.0.1:${desktop.port}` }] });

describe("connector command line", () => {
  it("rejects a bad config naming the key, before dialing anything", async () => {
    const file = writeConfig({ edge: edge.url, token: site.token, hypervisors: [{ name: "lab", type: "vnc", vms: [{ id: "a", address: "10.0.0.9" }] }] });
    const proc = runConnector(["--config", file]);
    expect(await proc.exited).toBe(2);
    expect(proc.output()).toMatch(/hypervisors\[0\]\.vms\[0\]\.address: host:port/);
  });

  it("--check reports each hypervisor and exits 0 when all answer, 1 otherwise", async () => {
    const ok = runConnector(["--check", "--config", writeConfig({ edge: edge.url, token: site.token, hypervisors: [lab()] })]);
    expect(await ok.exited).toBe(0);
    expect(ok.output()).toMatch(/^ok +lab \(vnc\)$/m);
    expect(ok.output()).toMatch(/desk .*reachable, RFB 003\.008/);

    const closed = await freePort();
    const bad = runConnector([
      "--check",
      "--config",
      writeConfig({ edge: edge.url, token: site.token, hypervisors: [{ name: "lab", type: "vnc", vms: [{ id: "gone", address: `127.0.0.1:${closed}` }] }] }),
    ]);
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/FAIL lab \(vnc\)/);
    expect(bad.output()).toMatch(/gone .*refused the connection/);
  });

  it("says clearly when the edge refuses its token, never logs the token, and keeps retrying", async () => {
    const wrong = `pht1.${SITE}.${"A".repeat(43)}`;
    const c = await site.startConnector({ edge: edge.url, token: wrong, hypervisors: [lab()] }, { waitReady: false });
    await waitFor("refusal logged", async () => (/"event":"edge.refused"/.test(c.proc.output()) ? true : undefined), 20_000);
    expect(c.proc.output()).toMatch(/"status":401.*connector token was refused/);
    expect(c.proc.output()).not.toContain(wrong);
    expect(c.proc.child.exitCode).toBeNull();
    await c.stop();
  });
});

describe("connector resilience", () => {
  it("reconnects after the tunnel is cut, and new consoles work", async () => {
    const c = await site.startConnector({ edge: proxy.url, token: site.token, hypervisors: [lab()] });
    expect((await c.metrics()).porthole_connector_connects_total).toBe(1);
    const rfb = await RfbClient.open((await api.openConsole(SITE, "lab", "desk")).wsUrl);
    await rfb.handshake();
    proxy.cut();
    expect((await rfb.closed(20_000)).code).toBe(CloseCode.connectorOffline);
    await waitFor("reconnect", async () => ((await c.metrics()).porthole_connector_connects_total === 2 ? true : undefined), 30_000);
    const again = await RfbClient.open((await api.openConsole(SITE, "lab", "desk")).wsUrl);
    expect((await again.handshake()).height).toBe(desktop.height);
    again.close();
    expect(c.proc.output()).toMatch(/"event":"edge.disconnected".*"retryInMs":\d+/);
    await c.stop();
  });

  it("detects a half-open tunnel through heartbeats and redials", async () => {
    const configFile = writeConfig({ edge: proxy.url, token: site.token, hypervisors: [lab()] });
    const port = await freePort();
    const proc = runConnector(["--config", configFile, "--metrics", `127.0.0.1:${port}`], { PORTHOLE_HEARTBEAT_MS: "300" });
    const metrics = async () => (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).match(/connects_total (\d+)/)?.[1];
    await waitFor("connected", async () => ((await metrics()) === "1" ? true : undefined), 30_000, proc);
    proxy.freeze();
    await waitFor("heartbeat loss", async () => (/"event":"tunnel.heartbeat_lost"/.test(proc.output()) ? true : undefined), 10_000, proc);
    proxy.thaw();
    proxy.cut(); // drop the frozen connections so the redial gets a fresh path
    await waitFor("redial", async () => ((await metrics()) === "2" ? true : undefined), 30_000, proc);
    await proc.stop();
  });

  it("on SIGTERM stops taking consoles, closes open ones with a reason, and exits 0", async () => {
    const c = await site.startConnector({ edge: edge.url, token: site.token, hypervisors: [lab()] });
    const rfb = await RfbClient.open((await api.openConsole(SITE, "lab", "desk")).wsUrl);
    await rfb.handshake();
    const exit = c.stop("SIGTERM");
    const closed = await rfb.closed(20_000);
    expect(closed.code).toBe(CloseCode.connectorOffline);
    expect(closed.reason).toMatch(/connector was stopped/);
    expect(await exit).toBe(0);
    expect(c.proc.output()).toMatch(/"event":"connector.stopped"/);
  });
});
