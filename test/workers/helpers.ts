/**
 * Drives the Worker from inside workerd: sign in, create a site, and play a connector or a
 * browser over real WebSockets (workerd's client: fetch with Upgrade, then accept()).
 */
import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import {
  decodeMessage,
  encodeJson,
  type Frame,
  FrameType,
} from "../../shared/protocol/frames.ts";
import { type ApiClient, apiClient } from "../../shared/api/client.ts";
import type { AuditRow, ConsoleOpened, Role } from "../../shared/api/types.ts";

export const ORIGIN = "http://porthole.test";

/** A sign-in's cookie ("porthole_session=…") or a header set (e.g. an API token's). */
type Auth = string | Record<string, string>;

function authHeaders(auth?: Auth): Record<string, string> {
  return typeof auth === "string" ? { Cookie: auth } : { ...auth };
}

/** Any request to this Worker, answered as it is (for tests of refusals and odd requests). */
export async function call(method: string, path: string, body?: unknown, auth?: Auth): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...authHeaders(auth) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** The typed client (shared/api) as `auth`, against this Worker: `api(admin).call("GET /api/links")`. */
export function api(auth?: Auth): ApiClient {
  return apiClient({ base: ORIGIN, fetch: (url, init) => exports.default.fetch(url, init), headers: () => authHeaders(auth) });
}

/** Signs in and returns the sign-in's cookie. */
export async function signIn(username = "admin", password = "correct horse battery staple"): Promise<string> {
  const res = await api().answer("POST /api/session", { body: { username, password } });
  expect(res.status).toBe(200);
  return res.headers.get("Set-Cookie")!.split(";")[0]!;
}

/** Creates a user as the administrator and returns that user's sign-in cookie. */
export async function userSession(admin: string, username: string, role: Role): Promise<string> {
  const password = `pw-${username}-0123456789`;
  expect((await api(admin).answer("POST /api/users", { body: { username, password, role } })).status).toBe(201);
  return signIn(username, password);
}

/** Polls the audit trail until `predicate` holds (audit writes do not hold up requests). */
export async function auditUntil<T>(admin: string, query: string, predicate: (rows: AuditRow[]) => T | undefined): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const rows = (await (await call("GET", `/api/audit${query}`, undefined, admin)).json()) as AuditRow[];
    const found = predicate(rows);
    if (found !== undefined && found !== false) return found;
    await new Promise((r) => setTimeout(r, 30));
  }
  throw new Error(`audit never showed what was expected for ${query}`);
}


export async function createSite(cookie: string, name: string): Promise<string> {
  const res = await api(cookie).answer("POST /api/sites", { body: { name } });
  expect(res.status).toBe(201);
  return res.body.connectorToken;
}

export async function upgrade(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}${path}`, { headers: { Upgrade: "websocket", ...headers } });
}

/** A socket whose messages and close are awaited in order. */
export class TestSocket {
  readonly ws: WebSocket;
  private readonly messages: (string | ArrayBuffer)[] = [];
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | null = null;
  /** The subprotocol the edge chose (workerd's client does not expose ws.protocol). */
  protocol: string | null = null;
  /**
   * Watching-now notices (sent to every credit viewer as consoles of its VM open and close) are
   * dropped unless a test asks for them: the relay's tests count console bytes, not who is watching.
   */
  keepWatching = false;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.accept();
    // workerd's client sockets default to Blob (standard binaryType); the relay deals in bytes.
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (e) => {
      if (!this.keepWatching && typeof e.data === "string" && e.data.startsWith('{"type":"watching"')) return;
      this.messages.push(e.data as string | ArrayBuffer);
      this.wake();
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async next(timeoutMs = 5000): Promise<string | ArrayBuffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length === 0) {
      if (this.closed) throw new Error(`socket closed ${this.closed.code} ${this.closed.reason}`);
      if (Date.now() > deadline) throw new Error("timed out waiting for a message");
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.messages.shift()!;
  }

  /** Waits until the socket closes, returning the code and reason. */
  async closedWith(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("timed out waiting for close");
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.closed;
  }

  pending(): number {
    return this.messages.length;
  }
}

/** A fake connector: the real protocol, driven by the test. */
export class TestConnector extends TestSocket {
  private frames: Frame[] = [];

  async nextFrame(timeoutMs = 5000): Promise<Frame> {
    while (this.frames.length === 0) {
      const msg = await this.next(timeoutMs);
      if (typeof msg === "string") throw new Error(`unexpected text ${msg}`);
      this.frames.push(...decodeMessage(new Uint8Array(msg)));
    }
    return this.frames.shift()!;
  }

  send(frame: Uint8Array): void {
    this.ws.send(frame);
  }
}

export const INVENTORY = [
  {
    name: "lab",
    type: "vnc" as const,
    reachable: true,
    vms: [{ id: "desk", name: "Desktop", powerState: "running" as const }],
  },
];

export async function connectConnector(token: string, hello: unknown = defaultHello()): Promise<TestConnector> {
  const res = await upgrade("/connect", { Authorization: `Bearer ${token}` });
  expect(res.status).toBe(101);
  const c = new TestConnector(res.webSocket!);
  c.send(encodeJson(FrameType.hello, 0, hello));
  return c;
}

export function defaultHello() {
  return { protocols: [1], software: "test/1", hostname: "test", hypervisors: INVENTORY };
}

export async function welcomedConnector(token: string): Promise<TestConnector> {
  const c = await connectConnector(token);
  const welcome = await c.nextFrame();
  expect(welcome.type).toBe(FrameType.welcome);
  return c;
}

export async function openConsole(cookie: string, site: string): Promise<ConsoleOpened> {
  const res = await api(cookie).answer("POST /api/consoles", { body: { site, hypervisor: "lab", vm: "desk" } });
  expect(res.status).toBe(201);
  return res.body;
}

export async function openBrowser(wsUrl: string, protocols?: string): Promise<TestSocket> {
  const url = new URL(wsUrl);
  const res = await upgrade(url.pathname + url.search, protocols ? { "Sec-WebSocket-Protocol": protocols } : {});
  expect(res.status).toBe(101);
  const socket = new TestSocket(res.webSocket!);
  socket.protocol = res.headers.get("Sec-WebSocket-Protocol");
  return socket;
}

/**
 * Plays a whole RFB 3.8 handshake (security None) between a test connector and a viewer socket,
 * as a real VNC server and client would, so the edge's RFB tracker sees a console past ServerInit.
 */
export async function rfbHandshake(connector: TestConnector, stream: number, viewer: TestSocket, width = 800, height = 600): Promise<void> {
  const { encodeData } = await import("../../shared/protocol/frames.ts");
  const enc = new TextEncoder();
  const dataFrom = async (bytes: number) => {
    let got = 0;
    while (got < bytes) {
      const f = await connector.nextFrame();
      if (f.type === FrameType.data && f.stream === stream) got += f.bytes.length;
    }
  };
  const toViewer = async (bytes: Uint8Array) => {
    connector.send(encodeData(stream, bytes));
    let got = 0;
    while (got < bytes.length) got += ((await viewer.next()) as ArrayBuffer).byteLength;
  };
  await toViewer(enc.encode("RFB 003.008\n"));
  viewer.ws.send(enc.encode("RFB 003.008\n"));
  await dataFrom(12);
  await toViewer(Uint8Array.from([1, 1])); // one security type: None
  viewer.ws.send(Uint8Array.from([1]));
  await dataFrom(1);
  await toViewer(Uint8Array.from([0, 0, 0, 0])); // SecurityResult OK
  viewer.ws.send(Uint8Array.from([1])); // ClientInit, shared
  await dataFrom(1);
  const name = enc.encode("test");
  const init = new Uint8Array(24 + name.length);
  const v = new DataView(init.buffer);
  v.setUint16(0, width);
  v.setUint16(2, height);
  init.set([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0], 4); // 32 bpp, depth 24, true colour
  v.setUint32(20, name.length);
  init.set(name, 24);
  await toViewer(init);
}

/** Reads the connector's frames until CREDIT frames worth `until` bytes have come; returns their sum. */
export async function creditFrames(connector: TestConnector, until: number): Promise<number> {
  let total = 0;
  while (total < until) {
    const f = await connector.nextFrame();
    if (f.type === FrameType.credit) total += f.bytes;
  }
  return total;
}
