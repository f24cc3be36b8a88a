import { describe, expect, it } from "vitest";
import pkg from "../../package.json" with { type: "json" };
import { call, createSite, signIn, upgrade, welcomedConnector } from "./helpers.ts";

describe("edge API", () => {
  it("answers /healthz with package.json's version", async () => {
    const res = await call("GET", "/healthz");
    expect(await res.json()).toEqual({ ok: true, version: pkg.version });
  });

  it("refuses wrong credentials and unsigned requests with the contract's error shape", async () => {
    const bad = await call("POST", "/api/session", { username: "admin", password: "nope" });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toEqual({ error: { code: "invalid_credentials", message: expect.any(String) } });
    const anon = await call("GET", "/api/sites");
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as { error: { code: string } }).error.code).toBe("not_signed_in");
  });

  it("sets an HttpOnly, SameSite session cookie and revokes it on sign-out", async () => {
    const res = await call("POST", "/api/session", { username: "admin", password: "correct horse battery staple" });
    expect(await res.json()).toEqual({ user: "admin", role: "admin" });
    const cookie = res.headers.get("Set-Cookie")!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const session = cookie.split(";")[0]!;
    expect((await call("GET", "/api/sites", undefined, session)).status).toBe(200);
    expect((await call("DELETE", "/api/session", undefined, session)).status).toBe(204);
    // The server forgot the session: replaying the old cookie no longer works.
    expect((await call("GET", "/api/sites", undefined, session)).status).toBe(401);
  });

  it("validates bodies and names the bad field", async () => {
    const cookie = await signIn();
    const res = await call("POST", "/api/sites", { name: "Bad Name!" }, cookie);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("invalid_request");
    expect(body.error.message).toMatch(/^name:/);
    const notJson = await exports_fetch_raw(cookie);
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { code: string } }).error.code).toBe("invalid_json");
  });

  it("creates a site once, shows its token once, and lists it", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "alpha");
    expect(token).toMatch(/^pht1\.alpha\.[A-Za-z0-9_-]{43}$/);
    expect((await call("POST", "/api/sites", { name: "alpha" }, cookie)).status).toBe(409);
    const sites = (await (await call("GET", "/api/sites", undefined, cookie)).json()) as { name: string }[];
    expect(sites).toEqual([{ name: "alpha", recording: "off", recordInput: false, connectors: [] }]);
    expect(JSON.stringify(sites)).not.toContain(token);
  });

  it("lists the VMs the site's connectors announce, and who is connected", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "beta");
    const connector = await welcomedConnector(token);
    const vms = await (await call("GET", "/api/sites/beta/vms", undefined, cookie)).json();
    expect(vms).toEqual([{ hypervisor: "lab", id: "desk", name: "Desktop", powerState: "running", level: "share" }]);
    const sites = (await (await call("GET", "/api/sites", undefined, cookie)).json()) as {
      connectors: { id: string; hypervisors: { name: string }[]; connectedAt: string }[];
    }[];
    const beta = (sites as unknown as { name: string; connectors: { hypervisors: { name: string }[] }[] }[]).find(
      (s) => s.name === "beta",
    )!;
    expect(beta.connectors).toHaveLength(1);
    expect(beta.connectors[0]!.hypervisors[0]!.name).toBe("lab");
    connector.ws.close(1000, "bye");
  });

  it("answers 404 for unknown sites, VMs and hypervisors, 503 when no connector is online", async () => {
    const cookie = await signIn();
    expect((await call("GET", "/api/sites/nowhere/vms", undefined, cookie)).status).toBe(404);
    expect((await call("POST", "/api/consoles", { site: "nowhere", hypervisor: "lab", vm: "desk" }, cookie)).status).toBe(404);
    const token = await createSite(cookie, "gamma");
    const offline = await call("POST", "/api/consoles", { site: "gamma", hypervisor: "lab", vm: "desk" }, cookie);
    expect(offline.status).toBe(503);
    expect(((await offline.json()) as { error: { code: string } }).error.code).toBe("connector_offline");
    const connector = await welcomedConnector(token);
    const noVm = await call("POST", "/api/consoles", { site: "gamma", hypervisor: "lab", vm: "ghost" }, cookie);
    expect(noVm.status).toBe(404);
    expect(((await noVm.json()) as { error: { code: string } }).error.code).toBe("unknown_vm");
    const noHv = await call("POST", "/api/consoles", { site: "gamma", hypervisor: "pool9", vm: "desk" }, cookie);
    expect(((await noHv.json()) as { error: { code: string } }).error.code).toBe("unknown_hypervisor");
    connector.ws.close(1000, "bye");
  });

  it("refuses connector upgrades without the right token", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "delta");
    expect((await upgrade("/connect")).status).toBe(401);
    const forged = token.slice(0, -4) + (token.endsWith("AAAA") ? "BBBB" : "AAAA");
    expect((await upgrade("/connect", { Authorization: `Bearer ${forged}` })).status).toBe(401);
    expect((await upgrade("/connect", { Authorization: `Bearer ${token.replace("delta", "nosite")}` })).status).toBe(404);
    expect((await call("GET", "/connect")).status).toBe(426);
  });
});

async function exports_fetch_raw(cookie: string): Promise<Response> {
  const { exports } = await import("cloudflare:workers");
  return exports.default.fetch("http://porthole.test/api/sites", {
    method: "POST",
    headers: { Cookie: cookie, "Content-Type": "application/json" },
    body: "{not json",
  });
}
