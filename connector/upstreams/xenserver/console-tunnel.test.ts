/**
 * The CONNECT tunnel against the XAPI simulator: the reply header however it is split, merged
 * with the first RFB bytes, and every failure reply as a message a person can act on.
 */
import { createServer, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CloseCode } from "../../../shared/protocol/close-codes.ts";
import { GREETING, readBytes, startFakeVnc } from "../../../test/harness/fake-vnc.ts";
import { XapiPool } from "../../../test/simulators/xapi/pool.ts";
import { pinnedTrust } from "../tls-trust.ts";
import { UpstreamError } from "../upstream.ts";
import { ConsoleUnauthorized, openXapiConsole } from "./console-tunnel.ts";
import { XenApi } from "./xenapi.ts";

let pool: XapiPool;
let vnc: Awaited<ReturnType<typeof startFakeVnc>>;
let api: XenApi;

beforeAll(async () => {
  vnc = await startFakeVnc();
  pool = await XapiPool.start({ hosts: ["127.0.12.1", "127.0.12.2"], vncPort: vnc.port, port: 0 });
  api = new XenApi({
    url: pool.masterUrl,
    username: "root",
    password: "secret",
    trustFor: async () => pinnedTrust(pool.certificatePem(0)),
  });
});

afterAll(async () => {
  await api.logout();
  await Promise.all([pool.stop(), vnc.stop()]);
});

async function locationOf(name: string): Promise<string> {
  const vm = pool.vms.find((v) => v.name === name)!;
  const ref = await api.call<string>("VM.get_by_uuid", vm.uuid);
  for (const c of await api.call<string[]>("VM.get_consoles", ref)) {
    if ((await api.call<string>("console.get_protocol", c)) === "rfb") return api.call<string>("console.get_location", c);
  }
  throw new Error("no rfb console");
}

async function open(name = "web-1"): Promise<Duplex> {
  const location = await locationOf(name);
  const host = new URL(location).hostname;
  const index = pool.hosts.indexOf(host);
  return openXapiConsole({
    location,
    session: await api.sessionRef(),
    trust: pinnedTrust(pool.certificatePem(index)),
    signal: new AbortController().signal,
    pool: "pool1",
    port: pool.port,
  });
}

async function expectGreetingAndEcho(socket: Duplex): Promise<void> {
  socket.resume();
  expect((await readBytes(socket, GREETING.length)).toString()).toBe(GREETING);
  socket.write("ping");
  expect((await readBytes(socket, 4)).toString()).toBe("ping");
  socket.destroy();
}

describe("XAPI console tunnel", () => {
  it("tunnels to the member host the VM runs on, with the session as the only cookie", async () => {
    const location = await locationOf("web-1");
    expect(new URL(location).hostname).toBe("127.0.12.2");
    expect(new URL(location).port).toBe("");
    await expectGreetingAndEcho(await open());
    const last = pool.stats.connects.at(-1)!;
    expect(last.host).toBe("127.0.12.2");
    expect(last.requestLine).toMatch(/^CONNECT \/console\?uuid=[0-9a-f-]+ HTTP\/1\.1$/);
    expect(last.cookieHeader).toMatch(/^session_id=OpaqueRef:[0-9a-f-]+$/);
  });

  it("strips a reply header split at every byte boundary, losing nothing", async () => {
    const headerLength = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nCache-Control: no-cache, no-store\r\n\r\n".length;
    for (let splitAt = 1; splitAt < headerLength; splitAt++) {
      pool.headerDelivery = { splitAt };
      const socket = await open();
      socket.resume();
      expect((await readBytes(socket, GREETING.length)).toString(), `split at ${splitAt}`).toBe(GREETING);
      socket.destroy();
    }
    pool.headerDelivery = "whole";
  });

  it("handles a header delivered one byte at a time", async () => {
    pool.headerDelivery = "bytewise";
    try {
      await expectGreetingAndEcho(await open());
    } finally {
      pool.headerDelivery = "whole";
    }
  });

  it("forwards RFB bytes that arrive in the same read as the end of the header", async () => {
    pool.headerDelivery = "merged";
    try {
      await expectGreetingAndEcho(await open());
    } finally {
      pool.headerDelivery = "whole";
    }
  });

  it.each([
    [403, CloseCode.forbidden, /no role that may open consoles \(403\)/],
    [404, CloseCode.notFound, /no graphical console.*\(404\)/],
    [500, CloseCode.upstreamFailed, /\(500\): the VM is not running, or it moved/],
    [503, CloseCode.upstreamFailed, /one viewer per console \(503\)/],
  ] as const)("turns a %i reply into a message a person can act on", async (status, code, message) => {
    const vm = pool.vms.find((v) => v.name === "web-1")!;
    pool.setConsoleFault(vm.uuid, status);
    try {
      const err = await open().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpstreamError);
      expect((err as UpstreamError).code).toBe(code);
      expect((err as UpstreamError).message).toMatch(message);
    } finally {
      pool.setConsoleFault(vm.uuid, null);
    }
  });

  it("reports a 401 as ConsoleUnauthorized, so the caller signs in again", async () => {
    const vm = pool.vms.find((v) => v.name === "web-1")!;
    pool.setConsoleFault(vm.uuid, 401);
    try {
      await expect(open()).rejects.toBeInstanceOf(ConsoleUnauthorized);
    } finally {
      pool.setConsoleFault(vm.uuid, null);
    }
  });

  it("reports 200 followed at once by EOF", async () => {
    const vm = pool.vms.find((v) => v.name === "web-1")!;
    pool.setConsoleFault(vm.uuid, "eof-after-200");
    try {
      await expect(open()).rejects.toThrow(/accepted the console request but closed it at once/);
    } finally {
      pool.setConsoleFault(vm.uuid, null);
    }
  });

  it("refuses a member whose certificate is not the one trusted", async () => {
    const location = await locationOf("web-1");
    const err = await openXapiConsole({
      location,
      session: await api.sessionRef(),
      trust: pinnedTrust(pool.certificatePem(0)), // the master's, not the member's
      signal: new AbortController().signal,
      pool: "pool1",
      port: pool.port,
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/certificate of 127\.0\.12\.2 is not the one the connector trusts/);
  });

  it("a VNC server behind the host that never greets gets 4504 (the same wait as every upstream's)", async () => {
    const held: Socket[] = [];
    const silent = createServer((s) => held.push(s.on("error", () => {})));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const mute = await XapiPool.start({ hosts: ["127.0.12.11"], vncPort: (silent.address() as { port: number }).port, port: 0 });
    const muteApi = new XenApi({ url: mute.masterUrl, username: "root", password: "secret", trustFor: async () => pinnedTrust(mute.certificatePem(0)) });
    try {
      const vm = mute.vms.find((v) => v.powerState === "Running")!;
      const ref = await muteApi.call<string>("VM.get_by_uuid", vm.uuid);
      let location = "";
      for (const c of await muteApi.call<string[]>("VM.get_consoles", ref)) {
        if ((await muteApi.call<string>("console.get_protocol", c)) === "rfb") location = await muteApi.call<string>("console.get_location", c);
      }
      const err = await openXapiConsole({
        location,
        session: await muteApi.sessionRef(),
        trust: pinnedTrust(mute.certificatePem(0)),
        signal: new AbortController().signal,
        pool: "mute",
        port: mute.port,
        greetingTimeoutMs: 1000,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpstreamError);
      expect((err as UpstreamError).code).toBe(CloseCode.upstreamTimeout);
      expect((err as UpstreamError).message).toBe("The VNC server accepted the connection but sent no greeting within 1 s.");
    } finally {
      await muteApi.logout();
      await mute.stop();
      for (const s of held) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
