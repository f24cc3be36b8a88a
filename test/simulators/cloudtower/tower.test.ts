import { once } from "node:events";
import { request } from "node:https";
import { createServer, type Server, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { CloudTower } from "./tower.ts";

// Addresses of this file only (other test files use other 127.x addresses).
const TOWER = "127.0.77.1";
const CLUSTER = "127.0.77.2";
const TTL_TOWER = "127.0.77.3";
const TTL_CLUSTER = "127.0.77.4";

const VNC_QUERY = "query vnc($input: VncInput!) { vnc(input: $input) { vm_uuid host_ip cluster_ip raw_token token } }";

interface Reply {
  status: number;
  body: any;
  fingerprint: string;
}

function post(host: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = request(
      { host, port: 443, path, method: "POST", rejectUnauthorized: false, agent: false, headers: { "content-type": "application/json", ...headers } },
      (res) => {
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const raw = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, body: raw ? JSON.parse(raw) : undefined, fingerprint });
        });
      },
    );
    req.on("error", reject);
    req.end(text);
  });
}

async function login(host: string, username = "admin", password = "secret"): Promise<Reply> {
  return post(host, "/v2/api/login", { username, password, source: "LOCAL" });
}

function vncQuery(host: string, token: string, vmId: string): Promise<Reply> {
  return post(host, "/api", { operationName: "vnc", variables: { input: { vm: { id: vmId } } }, query: VNC_QUERY }, { authorization: token });
}

type Opened = { ok: true; ws: WebSocket; fingerprint: string } | { ok: false; status: number; body: string };

function openWs(url: string): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ["binary"], { rejectUnauthorized: false });
    ws.binaryType = "nodebuffer";
    ws.once("upgrade", (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      ws.once("open", () => resolve({ ok: true, ws, fingerprint }));
    });
    ws.once("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ ok: false, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    });
    ws.once("error", reject);
  });
}

function firstMessage(ws: WebSocket): Promise<Buffer> {
  return new Promise((resolve) => ws.once("message", (data) => resolve(data as Buffer)));
}

/** A fake VNC server: greets with the RFB version and records what it receives. */
class FakeVnc {
  readonly server: Server;
  readonly received: Buffer[] = [];
  readonly sockets = new Set<Socket>();
  constructor() {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("data", (d) => this.received.push(d));
      socket.on("error", () => {});
      socket.write("RFB 003.008\n");
    });
  }
  async start(): Promise<number> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    return (this.server.address() as { port: number }).port;
  }
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

function directUrl(vnc: { cluster_ip: string; vm_uuid: string; raw_token: string; host_ip: string }): string {
  return `wss://${vnc.cluster_ip}/websockify/?uuid=${vnc.vm_uuid}&token=${vnc.raw_token}&host=${vnc.host_ip}`;
}

describe("CloudTower simulator", () => {
  const fake = new FakeVnc();
  let sim: CloudTower;
  let token: string;

  beforeAll(async () => {
    const vncPort = await fake.start();
    sim = await CloudTower.start({ tower: TOWER, cluster: CLUSTER, vncPort });
    token = (await login(TOWER)).body.data.token;
  });
  afterAll(async () => {
    await sim?.stop();
    await fake.stop();
  });

  it("logs in with good credentials and refuses bad ones with a 400 ErrorBody", async () => {
    const ok = await login(TOWER);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ task_id: expect.any(String), data: { token: expect.any(String) } });
    expect(ok.fingerprint).toBe(sim.towerFingerprint());
    expect(sim.url).toBe(`https://${TOWER}`);

    const before = sim.stats.failedLogins;
    const bad = await login(TOWER, "admin", "wrong");
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ path: "/v2/api/login", status: 400, code: "LOGIN_FAILED", message: expect.stringMatching(/incorrect/) });
    expect(sim.stats.failedLogins).toBe(before + 1);
  });

  it("answers the documented vnc query with fresh tokens holding '+', '/' and '='", async () => {
    const vm = sim.vms[0]!;
    const a = await vncQuery(TOWER, token, vm.id);
    const b = await vncQuery(TOWER, token, vm.id);
    expect(a.status).toBe(200);
    const vnc = a.body.data.vnc;
    expect(Object.keys(vnc)).toEqual(["vm_uuid", "host_ip", "cluster_ip", "raw_token", "token"]);
    expect(vnc).toMatchObject({ vm_uuid: vm.uuid, host_ip: vm.hostIp, cluster_ip: CLUSTER });
    expect(vnc.raw_token).toMatch(/^[0-9a-f]{32}$/);
    for (const t of [vnc.token, b.body.data.vnc.token]) {
      expect(t).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
      expect(t).toContain("+");
      expect(t).toContain("/");
      expect(t).toContain("=");
    }
    expect(b.body.data.vnc.raw_token).not.toBe(vnc.raw_token);
    expect(sim.stats.authorizationHeaders).toContain(token);
  });

  it("issues tokens without '+', '/' or '=' when told to", async () => {
    sim.forceSpecialTokenChars = false;
    try {
      const r = await vncQuery(TOWER, token, sim.vms[0]!.id);
      expect(r.body.data.vnc.token).toMatch(/^[A-Za-z0-9]+$/);
    } finally {
      sim.forceSpecialTokenChars = true;
    }
  });

  it("answers 401 to a missing, invalid or 'Bearer '-prefixed token", async () => {
    const id = sim.vms[0]!.id;
    const body = { operationName: "vnc", variables: { input: { vm: { id } } }, query: VNC_QUERY };
    expect((await post(TOWER, "/api", body)).status).toBe(401);
    expect((await vncQuery(TOWER, "nope", id)).status).toBe(401);
    const bearer = await vncQuery(TOWER, `Bearer ${token}`, id);
    expect(bearer.status).toBe(401);
    expect(bearer.body).toMatchObject({ path: "/api", status: 401, code: "UNAUTHORIZED" });
    expect(sim.stats.authorizationHeaders).toContain(`Bearer ${token}`);
  });

  it("reports an unknown VM and a stopped VM as GraphQL errors", async () => {
    const unknown = await vncQuery(TOWER, token, "no-such-vm");
    expect(unknown.status).toBe(200);
    expect(unknown.body).toMatchObject({ data: { vnc: null }, errors: [{ message: "VM not found" }] });

    const stopped = sim.vms.find((v) => v.status === "STOPPED")!;
    const r = await vncQuery(TOWER, token, stopped.id);
    expect(r.body.data.vnc).toBeNull();
    expect(r.body.errors[0].message).toMatch(/not running/);
    expect(r.body.errors[0].extensions.code).toBe("VM_NOT_RUNNING");
  });

  it("lists VMs", async () => {
    const r = await post(TOWER, "/api", { operationName: "vms", variables: {}, query: "query vms { vms { id name status } }" }, { authorization: token });
    expect(r.status).toBe(200);
    expect(r.body.data.vms).toEqual(sim.vms.map((v) => ({ id: v.id, name: v.name, status: v.status })));
    expect(r.body.data.vms.map((v: { status: string }) => v.status)).toEqual(["RUNNING", "RUNNING", "STOPPED"]);
    const bare = await post(TOWER, "/api", { query: "{ vms { id local_id } }" }, { authorization: token });
    expect(bare.body.data.vms[0]).toEqual({ id: sim.vms[0]!.id, local_id: sim.vms[0]!.uuid });
    const wrong = await post(TOWER, "/api", { query: "{ vms { id power } }" }, { authorization: token });
    expect(wrong.status).toBe(400);
    expect(wrong.body.errors[0].message).toMatch(/Cannot query field "power"/);
  });

  it("bridges an accepted direct websockify session to the VNC server, with subprotocol binary", async () => {
    const vnc = (await vncQuery(TOWER, token, sim.vms[0]!.id)).body.data.vnc;
    const url = directUrl(vnc);
    const opened = await openWs(url);
    if (!opened.ok) throw new Error(`refused: ${opened.status} ${opened.body}`);
    const { ws } = opened;
    expect(opened.fingerprint).toBe(sim.clusterFingerprint());
    expect(ws.protocol).toBe("binary");
    const greeting = await firstMessage(ws);
    expect(greeting.toString()).toBe("RFB 003.008\n");
    const receivedBefore = fake.received.length;
    ws.send(Buffer.from("RFB 003.008\n"));
    await expect.poll(() => Buffer.concat(fake.received.slice(receivedBefore)).toString()).toBe("RFB 003.008\n");
    expect(sim.stats.websockify.at(-1)).toEqual({ url: `/websockify/?uuid=${vnc.vm_uuid}&token=${vnc.raw_token}&host=${vnc.host_ip}`, form: "direct", accepted: true });
    ws.close();
    await once(ws, "close");
  });

  it("refuses a wrong host, uuid or token, and a token used once already", async () => {
    const [vm0, vm1] = [sim.vms[0]!, sim.vms[1]!];
    const vnc = (await vncQuery(TOWER, token, vm0.id)).body.data.vnc;
    const cases: [string, RegExp][] = [
      [directUrl({ ...vnc, host_ip: vm1.hostIp }), /host/],
      [directUrl({ ...vnc, vm_uuid: vm1.uuid }), /uuid/],
      [directUrl({ ...vnc, raw_token: "0".repeat(32) }), /invalid token/],
      [`wss://${CLUSTER}/websockify/?uuid=${vnc.vm_uuid}&token=${encodeURIComponent(vnc.token)}&host=${vnc.host_ip}`, /raw_token/],
    ];
    for (const [url, reason] of cases) {
      const r = await openWs(url);
      expect(r).toMatchObject({ ok: false, status: 403 });
      expect(sim.stats.websockify.at(-1)).toMatchObject({ accepted: false, reason: expect.stringMatching(reason) });
    }
    // None of the refusals consumed the token; the first session does, the second is refused.
    const first = await openWs(directUrl(vnc));
    expect(first.ok).toBe(true);
    const again = await openWs(directUrl(vnc));
    expect(again).toMatchObject({ ok: false, status: 403, body: expect.stringMatching(/already used/) });
    if (first.ok) first.ws.close();
  });

  it("accepts the tower-proxy form with a percent-encoded token and refuses a bare '+'", async () => {
    const vnc = (await vncQuery(TOWER, token, sim.vms[1]!.id)).body.data.vnc;
    const bare = await openWs(`wss://${TOWER}/websockify/?token=${vnc.token}&uuid=${vnc.vm_uuid}&host=${vnc.host_ip}`);
    expect(bare).toMatchObject({ ok: false, status: 403 });
    expect(sim.stats.websockify.at(-1)).toMatchObject({ form: "proxy", accepted: false, reason: expect.stringMatching(/'\+' was not percent-encoded/) });

    const rawAtTower = await openWs(`wss://${TOWER}/websockify/?token=${vnc.raw_token}&uuid=${vnc.vm_uuid}&host=${vnc.host_ip}`);
    expect(rawAtTower).toMatchObject({ ok: false, status: 403 });

    const encoded = `wss://${TOWER}/websockify/?token=${encodeURIComponent(vnc.token)}&uuid=${vnc.vm_uuid}&host=${vnc.host_ip}`;
    const good = await openWs(encoded);
    if (!good.ok) throw new Error(`refused: ${good.status} ${good.body}`);
    expect(good.fingerprint).toBe(sim.towerFingerprint());
    expect((await firstMessage(good.ws)).toString()).toBe("RFB 003.008\n");
    const rec = sim.stats.websockify.at(-1)!;
    expect(rec).toMatchObject({ form: "proxy", accepted: true });
    expect(rec.url).toMatch(/%2B/);
    expect(rec.url).toMatch(/%2F/);
    expect(rec.url).toMatch(/%3D/);
    good.ws.close();
    await once(good.ws, "close");
  });

  it("refuses every session while refuseWebsockify is set, without consuming the token", async () => {
    const vnc = (await vncQuery(TOWER, token, sim.vms[0]!.id)).body.data.vnc;
    sim.refuseWebsockify = true;
    try {
      expect(await openWs(directUrl(vnc))).toMatchObject({ ok: false, status: 403 });
    } finally {
      sim.refuseWebsockify = false;
    }
    const r = await openWs(directUrl(vnc));
    expect(r.ok).toBe(true);
    if (r.ok) r.ws.close();
  });

  it("closes the session of a VM powered off after its tokens were issued", async () => {
    const vm = sim.vms[1]!;
    const vnc = (await vncQuery(TOWER, token, vm.id)).body.data.vnc;
    vm.status = "STOPPED";
    try {
      const r = await openWs(directUrl(vnc));
      if (!r.ok) throw new Error("expected the handshake to complete");
      const [code] = (await once(r.ws, "close")) as [number, Buffer];
      expect(code).toBe(1011);
      expect(sim.stats.websockify.at(-1)).toMatchObject({ accepted: false, reason: "VM is not running" });
    } finally {
      vm.status = "RUNNING";
    }
  });

  it("answers 401 after expireTokens until the client logs in again", async () => {
    const id = sim.vms[0]!.id;
    const mine = (await login(TOWER)).body.data.token;
    expect((await vncQuery(TOWER, mine, id)).status).toBe(200);
    sim.expireTokens();
    expect((await vncQuery(TOWER, mine, id)).status).toBe(401);
    const fresh = (await login(TOWER)).body.data.token;
    expect((await vncQuery(TOWER, fresh, id)).status).toBe(200);
    token = fresh;
  });
});

describe("CloudTower simulator: expiry", () => {
  const fake = new FakeVnc();
  let sim: CloudTower;

  beforeAll(async () => {
    const vncPort = await fake.start();
    sim = await CloudTower.start({ tower: TTL_TOWER, cluster: TTL_CLUSTER, vncPort, tokenTtlMs: 300, vncTokenTtlMs: 100 });
  });
  afterAll(async () => {
    await sim?.stop();
    await fake.stop();
  });

  it("expires login tokens after tokenTtlMs and vnc tokens after vncTokenTtlMs", async () => {
    const token = (await login(TTL_TOWER)).body.data.token;
    const vnc = (await vncQuery(TTL_TOWER, token, sim.vms[0]!.id)).body.data.vnc;
    await new Promise((r) => setTimeout(r, 150));
    expect(await openWs(directUrl(vnc))).toMatchObject({ ok: false, status: 403, body: expect.stringMatching(/expired/) });
    await new Promise((r) => setTimeout(r, 200));
    expect((await vncQuery(TTL_TOWER, token, sim.vms[0]!.id)).status).toBe(401);
  });
});
