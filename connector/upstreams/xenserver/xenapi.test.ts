/** The XenAPI client against the simulated pool: both wire formats, redirects, session expiry. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeVnc } from "../../../test/harness/fake-vnc.ts";
import { XapiPool } from "../../../test/simulators/xapi/pool.ts";
import { pinnedTrust } from "../tls-trust.ts";
import { XenApi, XenApiError } from "./xenapi.ts";

let pool: XapiPool;
let vnc: Awaited<ReturnType<typeof startFakeVnc>>;
const clients: XenApi[] = [];

function client(url = pool.masterUrl, password = "secret"): XenApi {
  const api = new XenApi({
    url,
    username: "root",
    password,
    trustFor: async (host) => pinnedTrust(pool.certificatePem(pool.hosts.indexOf(host))),
  });
  clients.push(api);
  return api;
}

beforeAll(async () => {
  vnc = await startFakeVnc();
  pool = await XapiPool.start({ hosts: ["127.0.11.1", "127.0.11.2"], vncPort: vnc.port, port: 0 });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.logout()));
  await Promise.all([pool.stop(), vnc.stop()]);
});

describe("XenAPI client", () => {
  it("signs in once and reuses the session for every call", async () => {
    const api = client();
    const logins = pool.stats.logins;
    const records = await api.call<Record<string, { name_label: string }>>("VM.get_all_records");
    await api.call("host.get_all");
    expect(Object.values(records).map((r) => r.name_label)).toContain("web-1");
    expect(pool.stats.logins - logins).toBe(1);
    expect(api.wireFormat).toBe("json");
  });

  it("follows HOST_IS_SLAVE to the master when configured with a member", async () => {
    const api = client(`https://${pool.hosts[1]}:${pool.port}`);
    await api.call("VM.get_all_records");
    expect(api.masterHost).toBe(pool.hosts[0]);
  });

  it("falls back to XML-RPC on a host without /jsonrpc", async () => {
    pool.jsonRpc = false;
    try {
      const api = client();
      const ref = await api.call<string>("VM.get_by_uuid", pool.vms.find((v) => v.name === "web-1")!.uuid);
      expect(ref).toMatch(/^OpaqueRef:/);
      expect(api.wireFormat).toBe("xml");
      await expect(api.call("VM.get_by_uuid", "00000000-0000-0000-0000-000000000000")).rejects.toMatchObject({
        code: "UUID_INVALID",
      });
    } finally {
      pool.jsonRpc = true;
    }
  });

  it("signs in again, once, when the session expires", async () => {
    const api = client();
    await api.call("host.get_all");
    const logins = pool.stats.logins;
    pool.expireSessions();
    await api.call("host.get_all");
    expect(pool.stats.logins - logins).toBe(1);
  });

  it("reports bad credentials as SESSION_AUTHENTICATION_FAILED", async () => {
    const err = await client(pool.masterUrl, "wrong").call("host.get_all").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XenApiError);
    expect((err as XenApiError).code).toBe("SESSION_AUTHENTICATION_FAILED");
  });

  it("logs out on request", async () => {
    const api = client();
    await api.call("host.get_all");
    const before = pool.stats.logouts;
    await api.logout();
    expect(pool.stats.logouts).toBe(before + 1);
  });
});
