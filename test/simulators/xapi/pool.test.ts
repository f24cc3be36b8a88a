/**
 * The XAPI pool simulator is faithful to the facts in /work/shared/reference/xapi-console.md:
 * exact CONNECT bytes, HOST_IS_SLAVE, both wire formats sharing sessions, the cookie quirk, and
 * the header delivery modes (checked on the TLS records a client actually receives).
 */
import { X509Certificate } from "node:crypto";
import { request } from "node:https";
import { createServer, type Server, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONNECT_OK, XapiPool } from "./pool.ts";

type Pool = XapiPool;
import { formatXmlRpcCall, parseXmlRpcResponse } from "./wire.ts";

const GREETING = "RFB 003.008\n";

interface FakeVnc {
  port: number;
  /** bytes each connection received, in order of connection */
  received: Buffer[][];
  server: Server;
}

/** A stand-in VNC server: greets every connection with "RFB 003.008\n" and records what it gets. */
function fakeVnc(): Promise<FakeVnc> {
  const received: Buffer[][] = [];
  const server = createServer((s: Socket) => {
    const mine: Buffer[] = [];
    received.push(mine);
    s.on("data", (d) => mine.push(d));
    s.on("error", () => {});
    s.write(GREETING);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ port: (server.address() as { port: number }).port, received, server })),
  );
}

/** The port of the pool under test: a high one (`port: 0`), so these tests need no root. */
let simPort = 443;

function post(host: string, path: string, body: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port: simPort, path, method: "POST", ca, headers: { "content-type": "text/plain" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function jsonRpc(pool: Pool, host: number, method: string, params: unknown[]): Promise<any> {
  const r = await post(pool.hosts[host]!, "/jsonrpc", JSON.stringify({ jsonrpc: "2.0", method, params, id: 7 }), pool.certificatePem(host));
  return JSON.parse(r.body);
}

async function xmlRpc(pool: Pool, host: number, method: string, params: unknown[]) {
  const r = await post(pool.hosts[host]!, "/", formatXmlRpcCall(method, params), pool.certificatePem(host));
  return parseXmlRpcResponse(r.body);
}

async function login(pool: Pool): Promise<string> {
  const r = await jsonRpc(pool, 0, "session.login_with_password", ["root", "secret", "2.21", "test"]);
  return r.result as string;
}

/**
 * Open TLS to a host (trusting exactly its certificate), send `head`, and collect every 'data'
 * chunk (one per TLS record read) until the server closes or `settleMs` pass with no data.
 */
function rawConnect(
  host: string,
  ca: string,
  head: string,
  opts: { settleMs?: number; send?: string } = {},
): Promise<{ chunks: Buffer[]; closed: boolean; all: string }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const s = tlsConnect({ host, port: simPort, ca });
    const done = (closed: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ chunks, closed, all: Buffer.concat(chunks).toString("latin1") });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => done(false), opts.settleMs ?? 300);
    };
    s.on("secureConnect", () => {
      s.write(head);
      arm();
    });
    s.on("data", (d: Buffer) => {
      chunks.push(d);
      if (opts.send && Buffer.concat(chunks).toString("latin1").endsWith(GREETING)) s.write(opts.send);
      arm();
    });
    s.on("end", () => done(true));
    s.on("error", reject);
  });
}

const connectReq = (host: string, target: string, cookie?: string) =>
  `CONNECT ${target} HTTP/1.1\r\nHost: ${host}\r\n${cookie === undefined ? "" : `Cookie: ${cookie}\r\n`}\r\n`;

describe("XAPI pool simulator", () => {
  let vnc: FakeVnc;
  let pool: Pool;
  const MASTER = "127.77.1.1";
  const MEMBER = "127.77.1.2";

  beforeAll(async () => {
    vnc = await fakeVnc();
    pool = await XapiPool.start({ hosts: [MASTER, MEMBER], vncPort: vnc.port, port: 0 });
    simPort = pool.port;
  });
  afterAll(async () => {
    await pool?.stop();
    vnc?.server.close();
  });

  /** The rfb console of a running VM on the member: [console uuid, location]. */
  async function rfbConsole(session: string, vmUuid: string): Promise<{ uuid: string; location: string; protocols: string[] }> {
    const vm = (await jsonRpc(pool, 0, "VM.get_by_uuid", [session, vmUuid])).result;
    const consoles: string[] = (await jsonRpc(pool, 0, "VM.get_consoles", [session, vm])).result;
    const protocols: string[] = [];
    for (const c of consoles) protocols.push((await jsonRpc(pool, 0, "console.get_protocol", [session, c])).result);
    const c = consoles[protocols.indexOf("rfb")]!;
    const rec = (await jsonRpc(pool, 0, "console.get_record", [session, c])).result;
    return { uuid: rec.uuid, location: (await jsonRpc(pool, 0, "console.get_location", [session, c])).result, protocols };
  }

  it("logs in on the master only (HOST_IS_SLAVE names the master), refuses bad credentials", async () => {
    const member = await jsonRpc(pool, 1, "session.login_with_password", ["root", "secret", "2.21", "test"]);
    expect(member).toEqual({ jsonrpc: "2.0", error: { code: 1, message: "HOST_IS_SLAVE", data: [MASTER] }, id: 7 });
    const bad = await jsonRpc(pool, 0, "session.login_with_password", ["root", "nope", "2.21", "test"]);
    expect(bad.error.message).toBe("SESSION_AUTHENTICATION_FAILED");
    const s = await login(pool);
    expect(s).toMatch(/^OpaqueRef:[0-9a-f-]{36}$/);
    expect(pool.stats.failedLogins).toBe(1);
  });

  it("shares sessions across JSON-RPC and XML-RPC; /jsonrpc answers 404 when disabled", async () => {
    const s = await login(pool);
    const vm = pool.vms[0]!;
    const viaXml = await xmlRpc(pool, 0, "VM.get_by_uuid", [s, vm.uuid]);
    expect(viaXml.Status).toBe("Success");
    expect(viaXml.Value).toBe((await jsonRpc(pool, 0, "VM.get_by_uuid", [s, vm.uuid])).result);
    expect(await xmlRpc(pool, 0, "VM.get_by_uuid", [s, "nope"])).toEqual({ Status: "Failure", ErrorDescription: ["UUID_INVALID", "VM", "nope"] });
    expect(await xmlRpc(pool, 1, "session.login_with_password", ["root", "secret"])).toEqual({
      Status: "Failure",
      ErrorDescription: ["HOST_IS_SLAVE", MASTER],
    });

    const records = (await xmlRpc(pool, 0, "VM.get_all_records", [s])).Value as Record<string, Record<string, unknown>>;
    const byName = Object.fromEntries(Object.values(records).map((r) => [r.name_label, r]));
    expect(byName["web-1"]).toMatchObject({ power_state: "Running", is_a_template: false, is_control_domain: false, domid: expect.any(String) });
    expect(Object.values(records).filter((r) => r.is_control_domain)).toHaveLength(2);
    expect(Object.values(records).filter((r) => r.is_a_template)).toHaveLength(1);

    pool.jsonRpc = false;
    try {
      const r = await post(MASTER, "/jsonrpc", JSON.stringify({ jsonrpc: "2.0", method: "session.login_with_password", params: ["root", "secret"], id: 1 }), pool.certificatePem(0));
      expect(r.status).toBe(404);
      expect((await xmlRpc(pool, 0, "session.login_with_password", ["root", "secret", "2.21", "t"])).Status).toBe("Success");
    } finally {
      pool.jsonRpc = true;
    }

    expect((await jsonRpc(pool, 0, "session.logout", [s])).result).toBeNull();
    expect((await jsonRpc(pool, 0, "VM.get_all", [s])).error).toEqual({ code: 1, message: "SESSION_INVALID", data: [s] });
  });

  it("reports consoles on the host the VM runs on, and each host's certificate", async () => {
    const s = await login(pool);
    const c = await rfbConsole(s, pool.vms[0]!.uuid);
    expect(c.protocols).toEqual(["vt100", "rfb"]);
    expect(c.location).toBe(`https://${MEMBER}/console?uuid=${c.uuid}`);
    const hosts: string[] = (await jsonRpc(pool, 0, "host.get_all", [s])).result;
    const master = (await jsonRpc(pool, 0, "pool.get_master", [s, (await jsonRpc(pool, 0, "pool.get_all", [s])).result[0]])).result;
    expect(master).toBe(hosts[0]);
    const memberPem = (await jsonRpc(pool, 0, "host.get_server_certificate", [s, hosts[1]])).result;
    expect(new X509Certificate(memberPem).fingerprint256).toBe(pool.fingerprint(1));
    expect(pool.fingerprint(1)).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect((await jsonRpc(pool, 0, "host.get_address", [s, hosts[1]])).result).toBe(MEMBER);
  });

  it("CONNECT: exact 200 header, then the raw RFB stream both ways", async () => {
    const s = await login(pool);
    const c = await rfbConsole(s, pool.vms[0]!.uuid);
    const before = vnc.received.length;
    const r = await rawConnect(MEMBER, pool.certificatePem(1), connectReq(MEMBER, `/console?uuid=${c.uuid}`, `session_id=${s}`), {
      send: GREETING,
    });
    expect(r.all).toBe(CONNECT_OK + GREETING);
    expect(r.chunks[0]!.toString("latin1")).toBe("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nCache-Control: no-cache, no-store\r\n\r\n");
    expect(Buffer.concat(vnc.received[before]!).toString()).toBe(GREETING);
    const seen = pool.stats.connects.at(-1)!;
    expect(seen).toMatchObject({ host: MEMBER, requestLine: `CONNECT /console?uuid=${c.uuid} HTTP/1.1`, cookieHeader: `session_id=${s}` });
  });

  it("merged delivery: the header and the VNC greeting arrive in one TLS record", async () => {
    const s = await login(pool);
    const c = await rfbConsole(s, pool.vms[0]!.uuid);
    pool.headerDelivery = "merged";
    try {
      const r = await rawConnect(MEMBER, pool.certificatePem(1), connectReq(MEMBER, `/console?uuid=${c.uuid}`, `session_id=${s}`));
      expect(r.chunks.map((b) => b.toString("latin1"))).toEqual([CONNECT_OK + GREETING]);
    } finally {
      pool.headerDelivery = "whole";
    }
  });

  it("bytewise and split delivery: the header arrives in pieces, unaltered", async () => {
    const s = await login(pool);
    const c = await rfbConsole(s, pool.vms[0]!.uuid);
    try {
      pool.headerDelivery = "bytewise";
      const r = await rawConnect(MEMBER, pool.certificatePem(1), connectReq(MEMBER, `/console?uuid=${c.uuid}`, `session_id=${s}`));
      expect(r.all).toBe(CONNECT_OK + GREETING);
      expect(r.chunks.length).toBeGreaterThan(CONNECT_OK.length / 2);
      pool.headerDelivery = { splitAt: 17 };
      const r2 = await rawConnect(MEMBER, pool.certificatePem(1), connectReq(MEMBER, `/console?uuid=${c.uuid}`, `session_id=${s}`));
      expect(r2.chunks[0]!.toString("latin1")).toBe(CONNECT_OK.slice(0, 17));
      expect(r2.all).toBe(CONNECT_OK + GREETING);
    } finally {
      pool.headerDelivery = "whole";
    }
  });

  it("CONNECT failures: second-position cookie, wrong host, text console, halted VM, expired session", async () => {
    const s = await login(pool);
    const running = pool.vms[0]!;
    const c = await rfbConsole(s, running.uuid);
    const pem = pool.certificatePem(1);
    const status = (all: string) => all.split("\r\n")[0];

    // The server does not trim cookie names: " session_id" is not "session_id".
    const second = await rawConnect(MEMBER, pem, connectReq(MEMBER, `/console?uuid=${c.uuid}`, `other=1; session_id=${s}`));
    expect(status(second.all)).toBe("HTTP/1.1 401 Unauthorised");
    expect(second.all).toContain("\r\nconnection: close\r\n");
    expect(second.closed).toBe(true);
    // …but the query string works.
    const query = await rawConnect(MEMBER, pem, connectReq(MEMBER, `/console?uuid=${c.uuid}&session_id=${s}`));
    expect(query.all).toBe(CONNECT_OK + GREETING);

    // The master does not redirect: the VM runs on the member.
    const master = await rawConnect(MASTER, pool.certificatePem(0), connectReq(MASTER, `/console?uuid=${c.uuid}`, `session_id=${s}`));
    expect(status(master.all)).toBe("HTTP/1.1 500 Internal Error");

    const vm = (await jsonRpc(pool, 0, "VM.get_by_uuid", [s, running.uuid])).result;
    const consoles: string[] = (await jsonRpc(pool, 0, "VM.get_consoles", [s, vm])).result;
    const vt100 = (await jsonRpc(pool, 0, "console.get_record", [s, consoles[0]])).result;
    expect(vt100.protocol).toBe("vt100");
    const text = await rawConnect(MEMBER, pem, connectReq(MEMBER, `/console?uuid=${vt100.uuid}`, `session_id=${s}`));
    expect(text.all).toBe("HTTP/1.1 404 Not Found\r\nConnection: close\r\nCache-Control: no-cache, no-store\r\n\r\n");

    const halted = pool.vms.find((v) => v.powerState === "Halted" && !v.isTemplate)!;
    const hc = await rfbConsole(s, halted.uuid);
    const hostOf = new URL(hc.location).hostname;
    const h = await rawConnect(hostOf, pool.certificatePem(pool.hosts.indexOf(hostOf)), connectReq(hostOf, `/console?uuid=${hc.uuid}`, `session_id=${s}`));
    expect(status(h.all)).toBe("HTTP/1.1 500 Internal Error");

    pool.setConsoleFault(running.uuid, 503);
    const busy = await rawConnect(MEMBER, pem, connectReq(MEMBER, `/console?uuid=${c.uuid}`, `session_id=${s}`));
    expect(status(busy.all)).toBe("HTTP/1.1 503 Connection Limit Exceeded");
    pool.setConsoleFault(running.uuid, "eof-after-200");
    const eof = await rawConnect(MEMBER, pem, connectReq(MEMBER, `/console?uuid=${c.uuid}`, `session_id=${s}`));
    expect(eof).toMatchObject({ all: CONNECT_OK, closed: true });
    pool.setConsoleFault(running.uuid, null);

    pool.failureReplies = "minimal";
    const minimal = await rawConnect(MEMBER, pem, connectReq(MEMBER, `/console?uuid=${c.uuid}`, `session_id=nope`));
    expect(minimal.all).toBe("HTTP/1.1 401 Unauthorised\r\nconnection: close\r\n\r\n");
    pool.failureReplies = "xapi";

    pool.expireSessions();
    const expired = await rawConnect(MEMBER, pem, connectReq(MEMBER, `/console?uuid=${c.uuid}`, `session_id=${s}`));
    expect(status(expired.all)).toBe("HTTP/1.1 401 Unauthorised");
    expect((await jsonRpc(pool, 0, "VM.get_all", [s])).error.message).toBe("SESSION_INVALID");
  });

  it("migration moves the console: new uuid, new host in the location, the old uuid is gone", async () => {
    const s = await login(pool);
    const vm = pool.vms[1]!;
    const before = await rfbConsole(s, vm.uuid);
    pool.migrate(vm.uuid, 0);
    const after = await rfbConsole(s, vm.uuid);
    expect(after.uuid).not.toBe(before.uuid);
    expect(after.location).toBe(`https://${MASTER}/console?uuid=${after.uuid}`);
    const old = await rawConnect(MEMBER, pool.certificatePem(1), connectReq(MEMBER, `/console?uuid=${before.uuid}`, `session_id=${s}`));
    expect(old.all.split("\r\n")[0]).toBe("HTTP/1.1 500 Internal Error");
    const now = await rawConnect(MASTER, pool.certificatePem(0), connectReq(MASTER, `/console?uuid=${after.uuid}`, `session_id=${s}`));
    expect(now.all).toBe(CONNECT_OK + GREETING);
    pool.migrate(vm.uuid, 1);
  });
});

describe("XAPI pool simulator with a CA", () => {
  it("signs every host certificate with one CA", async () => {
    const pool = await XapiPool.start({ hosts: ["127.77.2.1", "127.77.2.2"], vncPort: 1, certificates: "ca", port: 0 });
    simPort = pool.port;
    try {
      expect(pool.caPem).toContain("BEGIN CERTIFICATE");
      for (const [i, host] of pool.hosts.entries()) {
        // Verified against the CA alone, host name (IP SAN) included.
        const r = await post(host, "/jsonrpc", JSON.stringify({ jsonrpc: "2.0", method: "session.login_with_password", params: ["root", "secret"], id: 1 }), pool.caPem!);
        expect(JSON.parse(r.body)).toMatchObject(i === 0 ? { result: expect.stringMatching(/^OpaqueRef:/) } : { error: { message: "HOST_IS_SLAVE" } });
        expect(new X509Certificate(pool.certificatePem(i)).verify(new X509Certificate(pool.caPem!).publicKey)).toBe(true);
      }
    } finally {
      await pool.stop();
    }
  });
});
