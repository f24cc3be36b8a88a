/**
 * A SmartX CloudTower simulator for tests: the tower (login + GraphQL `/api` + the tower's
 * websockify proxy) and one cluster (websockify), each on port 443 of its own loopback address
 * with its own self-signed certificate. Every accepted websockify session is bridged to a real
 * VNC server on 127.0.0.1:<vncPort>, byte for byte, as websockify does.
 *
 * What comes from CloudTower's documentation and what is assumed: see README.md beside this file.
 */
import { execFile } from "node:child_process";
import { randomBytes, randomInt, randomUUID, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import { createServer, type Server } from "node:https";
import { connect, isIPv4, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { promisify } from "node:util";
import WebSocket, { WebSocketServer } from "ws";

export interface TowerVm {
  id: string;
  uuid: string;
  name: string;
  status: "RUNNING" | "STOPPED" | "SUSPENDED" | "UNKNOWN";
  hostIp: string;
}

export interface CloudTowerOptions {
  /** the tower's address (HTTPS on 443), e.g. "127.0.20.1" */
  tower: string;
  /** the cluster's address where websockify listens (HTTPS/WSS on 443), e.g. "127.0.20.2" */
  cluster: string;
  /** a real VNC server (e.g. Xvnc) on 127.0.0.1:<vncPort>: every accepted websockify session is bridged to it */
  vncPort: number;
  /** default "admin" */
  username?: string;
  /** default "secret" */
  password?: string;
  /** default: two RUNNING VMs and one STOPPED (see DEFAULT_VMS) */
  vms?: TowerVm[];
  /** login tokens expire after this many ms (default: never) */
  tokenTtlMs?: number;
  /** (addition) `vnc` tokens expire after this many ms (default 60 000, as the real ones are short-lived) */
  vncTokenTtlMs?: number;
}

export interface WebsockifyRecord {
  /** the raw request URL (path and query, exactly as the client sent it) */
  url: string;
  /** (addition) which endpoint: "direct" = the cluster, "proxy" = the tower */
  form: "direct" | "proxy";
  accepted: boolean;
  reason?: string;
}

export interface TowerStats {
  logins: number;
  failedLogins: number;
  vncQueries: number;
  /** (addition) `vms` GraphQL queries answered */
  vmsQueries: number;
  /** every websockify upgrade: the raw URL and whether uuid/token/host checked out */
  websockify: WebsockifyRecord[];
  /** Authorization header values seen on /api (to check no "Bearer " prefix is sent) */
  authorizationHeaders: string[];
}

/** The default inventory: ids look like CloudTower's (cuid), uuids like the cluster's (ELF) VM uuids. */
export const DEFAULT_VMS: readonly TowerVm[] = [
  { id: "cltvm0web01aaaaaaaaaaaaa1", uuid: "3f2a8c1e-5b7d-4e09-9a61-0c4d2b7e8f01", name: "web-01", status: "RUNNING", hostIp: "192.168.5.4" },
  { id: "cltvm0db001aaaaaaaaaaaaa2", uuid: "8d0b6e3c-1a24-4f5e-b7c8-9e2f1a3d4c02", name: "db-01", status: "RUNNING", hostIp: "192.168.5.5" },
  { id: "cltvm0old01aaaaaaaaaaaaa3", uuid: "c71e4a90-2d3b-4c6f-8e15-7b9a0f2d6e03", name: "archive-01", status: "STOPPED", hostIp: "192.168.5.4" },
];

const DEFAULT_VNC_TOKEN_TTL_MS = 60_000;
const MAX_BODY = 1 << 20;
/** websocket → VNC: pause the VNC socket when this much is queued towards the client */
const HIGH_WATER = 1 << 20;
const VNC_FIELDS = ["vm_uuid", "host_ip", "cluster_ip", "raw_token", "token"] as const;
const VM_FIELDS = ["id", "name", "status", "local_id"] as const;

const execFileAsync = promisify(execFile);

interface Grant {
  vmId: string;
  uuid: string;
  hostIp: string;
  rawToken: string;
  token: string;
  expiresAt: number;
  used: boolean;
}

interface Certificate {
  key: string;
  cert: string;
  fingerprint: string;
}

interface Parts {
  options: CloudTowerOptions;
  towerCert: Certificate;
  clusterCert: Certificate;
}

interface GraphqlBody {
  operationName?: unknown;
  variables?: unknown;
  query?: unknown;
}

export class CloudTower {
  /** "https://<tower>" */
  readonly url: string;
  /** (addition) the two addresses */
  readonly tower: string;
  readonly cluster: string;
  /** the inventory; tests may change a VM's status in place (e.g. power one off between calls) */
  readonly vms: TowerVm[];
  /** Make websockify refuse every session while true (HTTP 403 on upgrade); tokens are not consumed. */
  refuseWebsockify = false;
  /**
   * Force the next `vnc` tokens to contain '+', '/' and '=' (default true: EVERY base64 token the
   * sim issues contains at least one of each; raw_token is always 32 hex chars). When false, the
   * base64 tokens contain none of the three (52 chars of [A-Za-z0-9]).
   */
  forceSpecialTokenChars = true;
  readonly stats: TowerStats = {
    logins: 0,
    failedLogins: 0,
    vncQueries: 0,
    vmsQueries: 0,
    websockify: [],
    authorizationHeaders: [],
  };

  private readonly vncPort: number;
  private readonly username: string;
  private readonly password: string;
  private readonly tokenTtlMs: number;
  private readonly vncTokenTtlMs: number;
  private readonly towerCert: Certificate;
  private readonly clusterCert: Certificate;
  /** login token → expiry (ms since epoch; Infinity = never) */
  private readonly sessions = new Map<string, number>();
  private readonly grantsByRaw = new Map<string, Grant>();
  private readonly grantsByToken = new Map<string, Grant>();
  private readonly sockets = new Set<Socket>();
  private readonly wss: WebSocketServer;
  private readonly towerServer: Server;
  private readonly clusterServer: Server;
  private stopped = false;

  private constructor(parts: Parts) {
    const o = parts.options;
    this.tower = o.tower;
    this.cluster = o.cluster;
    this.url = `https://${o.tower}`;
    this.vncPort = o.vncPort;
    this.username = o.username ?? "admin";
    this.password = o.password ?? "secret";
    this.tokenTtlMs = o.tokenTtlMs ?? Infinity;
    this.vncTokenTtlMs = o.vncTokenTtlMs ?? DEFAULT_VNC_TOKEN_TTL_MS;
    this.vms = (o.vms ?? DEFAULT_VMS).map((vm) => ({ ...vm }));
    this.towerCert = parts.towerCert;
    this.clusterCert = parts.clusterCert;
    // websockify's CompatibleWebSocket: answer "binary" when offered, otherwise no subprotocol.
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has("binary") ? "binary" : false),
    });

    this.towerServer = createServer({ key: this.towerCert.key, cert: this.towerCert.cert }, (req, res) => {
      this.onTowerRequest(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, errorBody(req, 500, String(err), "INTERNAL_ERROR"));
        else res.destroy();
      });
    });
    this.towerServer.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade("proxy", req, socket, head),
    );

    this.clusterServer = createServer({ key: this.clusterCert.key, cert: this.clusterCert.cert }, (req, res) => {
      // The cluster serves only websockify here.
      sendText(res, 404, "404 Not Found\n");
    });
    this.clusterServer.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade("direct", req, socket, head),
    );

    for (const server of [this.towerServer, this.clusterServer]) {
      server.on("connection", (socket: Socket) => {
        this.sockets.add(socket);
        socket.once("close", () => this.sockets.delete(socket));
      });
      // A client that drops mid-handshake must not crash the test process.
      server.on("tlsClientError", () => {});
    }
  }

  static async start(options: CloudTowerOptions): Promise<CloudTower> {
    for (const key of ["tower", "cluster"] as const) {
      const ip = options[key];
      if (!isIPv4(ip) || !ip.startsWith("127.")) {
        throw new Error(`CloudTower simulator: ${key} must be an IPv4 loopback address (127.x.y.z), got ${JSON.stringify(ip)}`);
      }
    }
    if (options.tower === options.cluster) {
      throw new Error("CloudTower simulator: tower and cluster need distinct addresses (both listen on 443)");
    }
    if (!Number.isInteger(options.vncPort) || options.vncPort < 1 || options.vncPort > 65535) {
      throw new Error(`CloudTower simulator: vncPort must be a TCP port, got ${options.vncPort}`);
    }
    const dir = await mkdtemp(join(tmpdir(), "cloudtower-sim-"));
    let towerCert: Certificate;
    let clusterCert: Certificate;
    try {
      [towerCert, clusterCert] = await Promise.all([
        selfSigned(dir, options.tower),
        selfSigned(dir, options.cluster),
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const sim = new CloudTower({ options, towerCert, clusterCert });
    try {
      await Promise.all([listen(sim.towerServer, options.tower), listen(sim.clusterServer, options.cluster)]);
    } catch (err) {
      await sim.stop();
      throw err;
    }
    return sim;
  }

  /** SHA-256 fingerprint of the tower's certificate, "AB:CD:…" */
  towerFingerprint(): string {
    return this.towerCert.fingerprint;
  }

  /** SHA-256 fingerprint of the cluster's certificate, "AB:CD:…" */
  clusterFingerprint(): string {
    return this.clusterCert.fingerprint;
  }

  /** Make every login token invalid now (later calls: 401), to test re-login. */
  expireTokens(): void {
    this.sessions.clear();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const ws of this.wss.clients) ws.terminate();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    const close = (server: Server) =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
      });
    await Promise.all([close(this.towerServer), close(this.clusterServer)]);
    this.wss.close();
  }

  // ---- the tower: HTTP ----

  private async onTowerRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "https://tower.invalid").pathname;
    if (path === "/v2/api/login") {
      if (req.method !== "POST") return sendJson(res, 404, errorBody(req, 404, `Cannot ${req.method} ${path}`, "NOT_FOUND"));
      return this.login(req, res);
    }
    if (path === "/api") {
      if (req.method !== "POST") {
        return sendJson(res, 405, { errors: [{ message: "this simulator takes GraphQL over POST only" }] });
      }
      return this.graphql(req, res);
    }
    sendJson(res, 404, errorBody(req, 404, `Cannot ${req.method} ${path}`, "NOT_FOUND"));
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    if (!body.ok) {
      this.stats.failedLogins++;
      return sendJson(res, 400, errorBody(req, 400, body.message, "BAD_REQUEST", "login"));
    }
    const input = body.value as { username?: unknown; password?: unknown; source?: unknown } | null;
    if (typeof input !== "object" || input === null || typeof input.username !== "string" || typeof input.password !== "string") {
      this.stats.failedLogins++;
      return sendJson(res, 400, errorBody(req, 400, "username and password are required", "BAD_REQUEST", "login"));
    }
    if (input.source !== undefined && input.source !== "LOCAL") {
      this.stats.failedLogins++;
      const known = ["LDAP", "AUTHN", "SSO"].includes(String(input.source));
      const message = known
        ? `no ${String(input.source)} identity source is configured`
        : `source must be one of LOCAL, LDAP, AUTHN, SSO`;
      return sendJson(res, 400, errorBody(req, 400, message, "BAD_REQUEST", "login"));
    }
    if (input.username !== this.username || input.password !== this.password) {
      this.stats.failedLogins++;
      return sendJson(res, 400, errorBody(req, 400, "username or password is incorrect", "LOGIN_FAILED", "login"));
    }
    this.stats.logins++;
    const token = randomBytes(20).toString("hex");
    this.sessions.set(token, Date.now() + this.tokenTtlMs);
    sendJson(res, 200, { task_id: cuid(), data: { token } });
  }

  private sessionValid(authorization: string | undefined): boolean {
    if (authorization === undefined) return false;
    const expiresAt = this.sessions.get(authorization);
    if (expiresAt === undefined) return false;
    if (Date.now() >= expiresAt) {
      this.sessions.delete(authorization);
      return false;
    }
    return true;
  }

  private async graphql(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const authorization = req.headers.authorization;
    if (authorization !== undefined) this.stats.authorizationHeaders.push(authorization);
    if (!this.sessionValid(authorization)) {
      req.resume();
      return sendJson(res, 401, errorBody(req, 401, "Unauthorized", "UNAUTHORIZED"));
    }
    const parsed = await readJson(req);
    if (!parsed.ok) return sendJson(res, 400, { errors: [{ message: parsed.message, extensions: { code: "BAD_REQUEST" } }] });
    const body = parsed.value as GraphqlBody | null;
    if (typeof body !== "object" || body === null || typeof body.query !== "string" || body.query.trim() === "") {
      return sendJson(res, 400, {
        errors: [{ message: "GraphQL operations must contain a non-empty `query`.", extensions: { code: "BAD_REQUEST" } }],
      });
    }
    const query = body.query;
    const operation = operationOf(body.operationName, query);
    if (operation === "vnc") return this.vnc(res, query, body.variables);
    if (operation === "vms") return this.listVms(res, query);
    const root = /^\s*(?:query\b[^{]*)?\{\s*(\w+)/.exec(query)?.[1] ?? "?";
    sendJson(res, 400, validationError(`Cannot query field "${root}" on type "Query". (simulator: only vnc and vms)`));
  }

  private vnc(res: ServerResponse, query: string, variables: unknown): void {
    this.stats.vncQueries++;
    const m = /^\s*vnc\s*\(\s*input\s*:\s*\$(\w+)\s*\)\s*\{([^{}]*)\}/.exec(rootSelection(query));
    if (!m) {
      return sendJson(
        res,
        400,
        validationError("simulator: expected `vnc(input: $input) { vm_uuid host_ip cluster_ip raw_token token }`"),
      );
    }
    const fields = selection(m[2] ?? "");
    const unknown = fields.find((f) => f !== "__typename" && !(VNC_FIELDS as readonly string[]).includes(f));
    if (unknown !== undefined || fields.length === 0) return sendJson(res, 400, fieldError(unknown, "Vnc"));
    const variable = m[1] ?? "input";
    const input = (variables as Record<string, unknown> | null | undefined)?.[variable] as
      | { vm?: { id?: unknown } }
      | undefined;
    const vmId = input?.vm?.id;
    if (typeof vmId !== "string") {
      return sendJson(
        res,
        400,
        validationError(`Variable "$${variable}" got invalid value; Field "vm" of required type "VmWhereUniqueInput!" was not provided.`),
      );
    }
    const vm = this.vms.find((v) => v.id === vmId);
    if (!vm) {
      return sendJson(res, 200, {
        data: { vnc: null },
        errors: [{ message: "VM not found", path: ["vnc"], extensions: { code: "VM_NOT_FOUND" } }],
      });
    }
    if (vm.status === "STOPPED") {
      return sendJson(res, 200, {
        data: { vnc: null },
        errors: [
          {
            message: `VM ${vm.name} is not running (status ${vm.status}): power it on to open its console`,
            path: ["vnc"],
            extensions: { code: "VM_NOT_RUNNING" },
          },
        ],
      });
    }
    const grant = this.issue(vm);
    const all: Record<string, string> = {
      __typename: "Vnc",
      vm_uuid: grant.uuid,
      host_ip: grant.hostIp,
      cluster_ip: this.cluster,
      raw_token: grant.rawToken,
      token: grant.token,
    };
    const vnc: Record<string, string> = {};
    for (const f of fields) vnc[f] = all[f] ?? "";
    sendJson(res, 200, { data: { vnc } });
  }

  private listVms(res: ServerResponse, query: string): void {
    this.stats.vmsQueries++;
    const m = /^\s*vms\s*(?:\([^)]*\))?\s*\{([^}]*)\}/.exec(rootSelection(query));
    const fields = m ? selection(m[1] ?? "") : ["id", "name", "status"];
    const unknown = fields.find((f) => f !== "__typename" && !(VM_FIELDS as readonly string[]).includes(f));
    if (unknown !== undefined || fields.length === 0) return sendJson(res, 400, fieldError(unknown, "Vm"));
    const vms = this.vms.map((vm) => {
      const all: Record<string, string> = { __typename: "Vm", id: vm.id, name: vm.name, status: vm.status, local_id: vm.uuid };
      const out: Record<string, string> = {};
      for (const f of fields) out[f] = all[f] ?? "";
      return out;
    });
    sendJson(res, 200, { data: { vms } });
  }

  private issue(vm: TowerVm): Grant {
    const now = Date.now();
    for (const [raw, g] of this.grantsByRaw) {
      if (g.expiresAt <= now) {
        this.grantsByRaw.delete(raw);
        this.grantsByToken.delete(g.token);
      }
    }
    const grant: Grant = {
      vmId: vm.id,
      uuid: vm.uuid,
      hostIp: vm.hostIp,
      rawToken: randomBytes(16).toString("hex"),
      token: base64Token(this.forceSpecialTokenChars),
      expiresAt: now + this.vncTokenTtlMs,
      used: false,
    };
    this.grantsByRaw.set(grant.rawToken, grant);
    this.grantsByToken.set(grant.token, grant);
    return grant;
  }

  // ---- websockify (cluster: direct form; tower: proxy form) ----

  private onUpgrade(form: "direct" | "proxy", req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => {});
    const rawUrl = req.url ?? "";
    const refuse = (status: number, reason: string) => {
      this.stats.websockify.push({ url: rawUrl, form, accepted: false, reason });
      refuseUpgrade(socket, status, reason);
    };
    const url = new URL(rawUrl, "https://sim.invalid");
    if (url.pathname !== "/websockify/") return refuse(404, "no such path (websockify is at /websockify/)");
    if (this.refuseWebsockify) return refuse(403, "refused by the test (refuseWebsockify)");
    // URLSearchParams decodes as form data, as websockify's parse_qs does: a bare '+' becomes ' '.
    const token = url.searchParams.get("token");
    const uuid = url.searchParams.get("uuid");
    const host = url.searchParams.get("host");
    if (!token || !uuid || !host) return refuse(403, "missing token, uuid or host");
    const grant = form === "direct" ? this.grantsByRaw.get(token) : this.grantsByToken.get(token);
    if (!grant) {
      let reason = "invalid token";
      if (form === "proxy" && token.includes(" ")) reason += " (it holds a space: a '+' was not percent-encoded)";
      else if (form === "direct" && this.grantsByToken.has(token)) reason += " (the cluster takes raw_token, not the base64 token)";
      else if (form === "proxy" && this.grantsByRaw.has(token)) reason += " (the tower's proxy takes the base64 token, not raw_token)";
      return refuse(403, reason);
    }
    if (Date.now() >= grant.expiresAt) return refuse(403, "token expired");
    if (grant.used) return refuse(403, "token already used");
    if (uuid !== grant.uuid) return refuse(403, "uuid does not match the token's VM");
    if (host !== grant.hostIp) return refuse(403, "host does not match the VM's host");
    grant.used = true;
    const vm = this.vms.find((v) => v.id === grant.vmId);
    const running = vm !== undefined && vm.status !== "STOPPED";
    this.stats.websockify.push(
      running ? { url: rawUrl, form, accepted: true } : { url: rawUrl, form, accepted: false, reason: "VM is not running" },
    );
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (!running) {
        // websockify completes the handshake, then fails to reach the stopped VM's VNC server.
        ws.close(1011, "Failed to connect to downstream server");
        return;
      }
      this.bridge(ws);
    });
  }

  private bridge(ws: WebSocket): void {
    const tcp = connect({ host: "127.0.0.1", port: this.vncPort });
    let connected = false;
    let done = false;
    const finish = (code: number, reason: string) => {
      if (done) return;
      done = true;
      tcp.destroy();
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code, reason);
    };
    tcp.on("connect", () => {
      connected = true;
    });
    tcp.on("data", (chunk: Buffer) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(chunk, { binary: true }, () => {
        if (tcp.isPaused() && ws.bufferedAmount < HIGH_WATER / 2) tcp.resume();
      });
      if (ws.bufferedAmount > HIGH_WATER) tcp.pause();
    });
    tcp.on("error", () => finish(1011, connected ? "Target error" : "Failed to connect to downstream server"));
    tcp.on("close", () => finish(1000, "Target closed"));
    ws.on("message", (data, isBinary) => {
      if (!isBinary) {
        finish(1003, "text frames are not supported");
        return;
      }
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (!tcp.write(buf)) {
        ws.pause();
        tcp.once("drain", () => ws.resume());
      }
    });
    ws.on("error", () => {});
    ws.on("close", () => {
      done = true;
      tcp.end();
      setTimeout(() => tcp.destroy(), 1000).unref();
    });
  }
}

// ---- helpers ----

async function selfSigned(dir: string, ip: string): Promise<Certificate> {
  const keyPath = join(dir, `${ip}.key`);
  const certPath = join(dir, `${ip}.crt`);
  await execFileAsync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", `/CN=${ip}`, "-addext", `subjectAltName=IP:${ip}`, "-keyout", keyPath, "-out", certPath,
  ]);
  const [key, cert] = await Promise.all([readFile(keyPath, "utf8"), readFile(certPath, "utf8")]);
  return { key, cert, fingerprint: new X509Certificate(cert).fingerprint256 };
}

function listen(server: Server, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`CloudTower simulator: cannot listen on ${host}:443: ${err.message}`));
    server.once("error", onError);
    server.listen({ host, port: 443, exclusive: true }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/**
 * A base64 token. special: 40 random bytes (so "==" padding) with one 3-byte group set to
 * FB FF BF, which encodes as "+/+/": every token holds '+', '/' and '='. Otherwise 39 bytes
 * (no padding) redrawn until no '+' or '/' appears.
 */
function base64Token(special: boolean): string {
  if (special) {
    const bytes = randomBytes(40);
    const at = 3 * randomInt(0, 13);
    bytes[at] = 0xfb;
    bytes[at + 1] = 0xff;
    bytes[at + 2] = 0xbf;
    return bytes.toString("base64");
  }
  for (;;) {
    const t = randomBytes(39).toString("base64");
    if (!/[+/=]/.test(t)) return t;
  }
}

/** A CloudTower-looking id (cuid: "c" + 24 lowercase base36 chars). */
function cuid(): string {
  let s = "c";
  while (s.length < 25) s += randomInt(0, 36).toString(36);
  return s;
}

function operationOf(operationName: unknown, query: string): "vnc" | "vms" | null {
  if (operationName === "vms") return "vms";
  if (operationName === "vnc") return "vnc";
  const root = /^\s*(?:query\b[^{]*)?\{\s*(\w+)/.exec(query)?.[1];
  return root === "vnc" || root === "vms" ? root : null;
}

/** The text inside the operation's outermost braces: `query vms { vms { id } }` → ` vms { id } `. */
function rootSelection(query: string): string {
  const start = query.indexOf("{");
  const end = query.lastIndexOf("}");
  return start >= 0 && end > start ? query.slice(start + 1, end) : "";
}

function selection(text: string): string[] {
  return text.split(/[\s,]+/).filter((f) => f !== "");
}

function fieldError(unknown: string | undefined, type: string) {
  return validationError(
    unknown === undefined ? 'Syntax Error: Expected Name, found "}".' : `Cannot query field "${unknown}" on type "${type}".`,
  );
}

function validationError(message: string) {
  return { errors: [{ message, extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }] };
}

/** CloudTower's REST error body (swagger `ErrorBody`: path, status, message, operationName?, props?) plus a `code`. */
function errorBody(req: IncomingMessage, status: number, message: string, code: string, operationName?: string) {
  const path = new URL(req.url ?? "/", "https://tower.invalid").pathname;
  return { path, status, message, code, ...(operationName ? { operationName } : {}) };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "x-aoc-request-id": randomUUID(),
  });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

type JsonResult = { ok: true; value: unknown } | { ok: false; message: string };

async function readJson(req: IncomingMessage): Promise<JsonResult> {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(type)) {
    req.resume();
    return { ok: false, message: "Content-Type must be application/json" };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY) return { ok: false, message: "request body too large" };
    chunks.push(buf);
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown };
  } catch {
    return { ok: false, message: "request body is not valid JSON" };
  }
}

function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  const statusText = STATUS_CODES[status] ?? "Error";
  const body = `${status} ${statusText}: ${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\n` +
      "Content-Type: text/plain; charset=utf-8\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      "Connection: close\r\n\r\n" +
      body,
    () => socket.destroy(),
  );
}
