/**
 * A XenServer / XCP-ng pool (XAPI) simulator for tests: one HTTPS server per host on port 443 (or
 * one shared high port, `port: 0`, for tests that must not need root) of a loopback address, serving the XenAPI (JSON-RPC on POST /jsonrpc, XML-RPC on POST /) and the
 * console tunnel (`CONNECT /console?uuid=…`), bridged to a real VNC server on 127.0.0.1.
 *
 * The behaviour follows xapi's own source (ocaml/xapi/console.ml, xapi_http.ml,
 * ocaml/libs/http-lib/http.ml, http_svr.ml) as summarised in /work/shared/reference/xapi-console.md;
 * see README.md in this folder for the list of reproduced quirks.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { makeCertificates } from "./certs.ts";
import {
  type CallResult,
  formatJsonRpcResult,
  formatJsonRpcWireError,
  formatXmlRpcResult,
  parseJsonRpcCall,
  parseXmlRpcCall,
} from "./wire.ts";

export interface SimVm {
  uuid: string;
  name: string;
  powerState: "Running" | "Halted" | "Paused" | "Suspended";
  /** index into hosts; the host the VM is resident on (consoles live there) */
  host: number;
  /** console protocols the VM has, in XAPI order; default ["vt100", "rfb"] so the client must pick rfb */
  consoles?: ("rfb" | "vt100" | "rdp")[];
  isTemplate?: boolean;
  isControlDomain?: boolean;
}

export interface XapiPoolOptions {
  /** loopback addresses, first is the master, e.g. ["127.0.10.1", "127.0.10.2"]; all listen on `port` */
  hosts: string[];
  /**
   * The port every host listens on, API and console alike (XAPI's console location names no port):
   * default 443 like XenServer; 0 picks one free high port shared by all hosts, so the connector's
   * `consolePort` must name it.
   */
  port?: number;
  /** where every rfb console is bridged: a real VNC server (e.g. Xvnc) on 127.0.0.1:<vncPort> */
  vncPort: number;
  username?: string; // default "root"
  password?: string; // default "secret"
  /** default: two running VMs on host 1 (the non-master), one halted, one template, one control domain (dom0) per host */
  vms?: SimVm[];
  certificates?: "self-signed" | "ca"; // default "self-signed"
}

export type HeaderDelivery = "whole" | "bytewise" | "merged" | { splitAt: number };
export type ConsoleFault = 401 | 403 | 404 | 500 | 503 | "eof-after-200" | "no-reply";
/**
 * "xapi": failure replies byte for byte as xapi writes them (status line, content-length,
 * content-type, `connection: close`, cache-control, an HTML body; 404 is headers only).
 * "minimal": just `HTTP/1.1 <code> <reason>\r\nconnection: close\r\n\r\n`.
 */
export type FailureReplies = "xapi" | "minimal";

export interface ConnectRecord {
  /** the address of the host that received the CONNECT */
  host: string;
  /** e.g. "CONNECT /console?uuid=… HTTP/1.1" */
  requestLine: string;
  /** header names lower-cased; a repeated header keeps its last value (as xapi does) */
  headers: Record<string, string>;
  /** the Cookie header xapi reads (the last one when repeated) */
  cookieHeader: string | undefined;
  /** every header exactly as received: [name, value, name, value, …] */
  rawHeaders: string[];
}

/** xapi's http_200_ok (): always HTTP/1.1 and keep-alive, whatever the request said. */
export const CONNECT_OK = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nCache-Control: no-cache, no-store\r\n\r\n";

const NULL_REF = "OpaqueRef:NULL";
const newRef = (): string => `OpaqueRef:${randomUUID()}`;
type Protocol = "rfb" | "vt100" | "rdp";

interface HostObj {
  ref: string;
  uuid: string;
  address: string;
  name: string;
  certPem: string;
  keyPem: string;
  fingerprint: string;
}
interface ConsoleObj {
  ref: string;
  uuid: string;
  protocol: Protocol;
  vm: VmObj;
}
interface VmObj {
  ref: string;
  sim: SimVm;
  consoles: ConsoleObj[];
  domid: number;
}
interface ClassImpl {
  /** refs, in a stable order */
  all(): string[];
  record(ref: string): Record<string, unknown> | undefined;
  byUuid(uuid: string): string | undefined;
  /** the fields of its records (for get_<field>) */
  fields: string[];
}

const VM_FIELDS = [
  "uuid", "allowed_operations", "current_operations", "name_label", "name_description", "power_state",
  "user_version", "is_a_template", "is_default_template", "is_a_snapshot", "domid", "resident_on", "affinity",
  "memory_static_max", "VCPUs_max", "is_control_domain", "consoles", "other_config", "tags",
];
const CONSOLE_FIELDS = ["uuid", "protocol", "location", "VM", "other_config"];
const HOST_FIELDS = [
  "uuid", "name_label", "name_description", "hostname", "address", "enabled", "API_version_major",
  "API_version_minor", "API_version_vendor", "resident_VMs", "other_config",
];
const POOL_FIELDS = ["uuid", "name_label", "name_description", "master", "other_config"];

const REASONS: Record<number, string> = {
  401: "Unauthorised",
  403: "Forbidden",
  404: "Not Found",
  500: "Internal Error",
  503: "Connection Limit Exceeded",
};

/** The realm xapi names in WWW-Authenticate: the http action of the console handler. */
const CONSOLE_REALM = "connect_console";

const LOOPBACK = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function isLoopback(address: string): boolean {
  const m = LOOPBACK.exec(address);
  return m !== null && m.slice(1).every((n) => Number(n) <= 255);
}

function defaultVms(hostCount: number): SimVm[] {
  const member = Math.min(1, hostCount - 1);
  const vms: SimVm[] = [
    { uuid: randomUUID(), name: "web-1", powerState: "Running", host: member },
    { uuid: randomUUID(), name: "web-2", powerState: "Running", host: member },
    { uuid: randomUUID(), name: "db-halted", powerState: "Halted", host: 0 },
    { uuid: randomUUID(), name: "Debian Bookworm 12", powerState: "Halted", host: 0, isTemplate: true, consoles: [] },
  ];
  for (let i = 0; i < hostCount; i++) {
    vms.push({
      uuid: randomUUID(),
      name: `Control domain on host: ${hostName(i)}`,
      powerState: "Running",
      host: i,
      isControlDomain: true,
    });
  }
  return vms;
}

function hostName(i: number): string {
  return `xcp-host-${i + 1}`;
}

/** Uri.pct_decode: %XX sequences only (no "+" → space), invalid sequences left as they are. */
function pctDecode(s: string): string {
  return s.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * Http.parse_cookies: split on ";" (or on "&" when there is no ";"), then on "="; names and values
 * are percent-decoded but NOT trimmed, so in "other=1; session_id=X" the second name is " session_id".
 */
function parseXapiCookies(header: string): [string, string][] {
  const sep = header.includes(";") ? ";" : "&";
  return header.split(sep).map((pair) => {
    const [k = "", ...vs] = pair.split("=");
    return [pctDecode(k), pctDecode(vs.join("="))];
  });
}

/** Uri.query of the request target: k=v pairs split on "&", percent-decoded. */
function parseQuery(url: string): { path: string; query: [string, string][] } {
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  if (q < 0) return { path: pctDecode(path), query: [] };
  const query = url
    .slice(q + 1)
    .split("&")
    .filter((p) => p !== "")
    .map((pair): [string, string] => {
      const eq = pair.indexOf("=");
      return eq < 0 ? [pctDecode(pair), ""] : [pctDecode(pair.slice(0, eq)), pctDecode(pair.slice(eq + 1))];
    });
  return { path: pctDecode(path), query };
}

function assoc(list: [string, string][], key: string): string | undefined {
  return list.find(([k]) => k === key)?.[1];
}

const ok = (value: unknown): CallResult => ({ ok: true, value });
const fail = (...error: string[]): CallResult => ({ ok: false, error });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class XapiPool {
  /** https://<master>[:port] */
  masterUrl: string;
  readonly hosts: string[];
  /** The port every host listens on (see XapiPoolOptions.port). */
  port: number;
  readonly vms: SimVm[];
  readonly caPem: string | null;
  /** JSON-RPC endpoint /jsonrpc on (true, default) or answering 404 (an old host: clients must fall back to XML-RPC on POST /) */
  jsonRpc = true;
  /** How the 200 reply header of CONNECT is delivered. */
  headerDelivery: HeaderDelivery = "whole";
  /** Byte-exact xapi failure replies (default) or the bare status line + `connection: close`. */
  failureReplies: FailureReplies = "xapi";
  /** The pause between the pieces of a "bytewise" or { splitAt } header, in ms. */
  pieceDelayMs = 2;
  readonly stats: {
    logins: number;
    logouts: number;
    failedLogins: number;
    connects: ConnectRecord[];
    calls: Record<string, number>;
  } = { logins: 0, logouts: 0, failedLogins: 0, connects: [], calls: {} };

  #username: string;
  #password: string;
  #vncPort: number;
  #hosts: HostObj[];
  #vmObjs: VmObj[];
  #consoles = new Map<string, ConsoleObj>();
  #sessions = new Map<string, { uuid: string; user: string }>();
  #faults = new Map<string, ConsoleFault>();
  #servers: Server[] = [];
  #sockets = new Set<Duplex>();
  #poolRef = newRef();
  #poolUuid = randomUUID();
  #nextDomid = 1;
  #classes: Record<string, ClassImpl>;
  #stopped = false;

  private constructor(
    options: XapiPoolOptions,
    certs: { hosts: { certPem: string; keyPem: string; fingerprint: string }[]; caPem: string | null },
  ) {
    this.hosts = [...options.hosts];
    this.port = options.port ?? 443;
    this.masterUrl = `https://${options.hosts[0]}`;
    this.caPem = certs.caPem;
    this.#username = options.username ?? "root";
    this.#password = options.password ?? "secret";
    this.#vncPort = options.vncPort;
    this.#hosts = options.hosts.map((address, i) => {
      const c = certs.hosts[i]!;
      return { ref: newRef(), uuid: randomUUID(), address, name: hostName(i), ...c };
    });
    this.vms = (options.vms ?? defaultVms(options.hosts.length)).map((vm) => ({
      ...vm,
      consoles: [...(vm.consoles ?? ["vt100", "rfb"])],
      isTemplate: vm.isTemplate ?? false,
      isControlDomain: vm.isControlDomain ?? false,
    }));
    this.#vmObjs = this.vms.map((sim) => {
      const vm: VmObj = { ref: newRef(), sim, consoles: [], domid: sim.isControlDomain ? 0 : this.#nextDomid++ };
      this.#makeConsoles(vm);
      return vm;
    });
    this.#classes = {
      VM: {
        all: () => this.#vmObjs.map((v) => v.ref),
        record: (ref) => {
          const vm = this.#vmObjs.find((v) => v.ref === ref);
          return vm && this.#vmRecord(vm);
        },
        byUuid: (uuid) => this.#vmObjs.find((v) => v.sim.uuid === uuid)?.ref,
        fields: VM_FIELDS,
      },
      console: {
        all: () => [...this.#consoles.keys()],
        record: (ref) => {
          const c = this.#consoles.get(ref);
          return c && this.#consoleRecord(c);
        },
        byUuid: (uuid) => [...this.#consoles.values()].find((c) => c.uuid === uuid)?.ref,
        fields: CONSOLE_FIELDS,
      },
      host: {
        all: () => this.#hosts.map((h) => h.ref),
        record: (ref) => {
          const h = this.#hosts.find((x) => x.ref === ref);
          return h && this.#hostRecord(h);
        },
        byUuid: (uuid) => this.#hosts.find((h) => h.uuid === uuid)?.ref,
        fields: HOST_FIELDS,
      },
      pool: {
        all: () => [this.#poolRef],
        record: (ref) => (ref === this.#poolRef ? this.#poolRecord() : undefined),
        byUuid: (uuid) => (uuid === this.#poolUuid ? this.#poolRef : undefined),
        fields: POOL_FIELDS,
      },
    };
  }

  static async start(options: XapiPoolOptions): Promise<XapiPool> {
    if (options.hosts.length === 0) throw new Error("XapiPool: at least one host address is needed");
    for (const a of options.hosts) {
      if (!isLoopback(a)) throw new Error(`XapiPool: ${a} is not a loopback (127.0.0.0/8) address`);
    }
    if (new Set(options.hosts).size !== options.hosts.length) throw new Error("XapiPool: host addresses must be distinct");
    for (const vm of options.vms ?? []) {
      if (!Number.isInteger(vm.host) || vm.host < 0 || vm.host >= options.hosts.length) {
        throw new Error(`XapiPool: VM ${vm.uuid} names host ${vm.host}, which does not exist`);
      }
    }
    const certs = await makeCertificates(options.hosts, options.certificates ?? "self-signed");
    const pool = new XapiPool(options, certs);
    try {
      // The master first: with port 0 it picks the port the members then share.
      pool.port = await pool.#listen(0, pool.port);
      await Promise.all(pool.#hosts.slice(1).map((_, i) => pool.#listen(i + 1, pool.port)));
      if (pool.port !== 443) pool.masterUrl = `https://${options.hosts[0]}:${pool.port}`;
    } catch (err) {
      await pool.stop();
      throw err;
    }
    return pool;
  }

  /** SHA-256 "AB:CD:…" of that host's certificate. */
  fingerprint(hostIndex: number): string {
    return this.#host(hostIndex).fingerprint;
  }

  certificatePem(hostIndex: number): string {
    return this.#host(hostIndex).certPem;
  }

  /** Make CONNECT for this VM fail like the real server does, or 200 then immediate EOF, or never reply. */
  setConsoleFault(vmUuid: string, fault: ConsoleFault | null): void {
    this.#vm(vmUuid);
    if (fault === null) this.#faults.delete(vmUuid);
    else this.#faults.set(vmUuid, fault);
  }

  /** Invalidate every session: later API calls fail SESSION_INVALID and CONNECT answers 401. */
  expireSessions(): void {
    this.#sessions.clear();
  }

  /** Move a VM to another host (its console uuids and refs change, like a migration). */
  migrate(vmUuid: string, host: number): void {
    const vm = this.#vm(vmUuid);
    this.#host(host);
    vm.sim.host = host;
    vm.domid = this.#nextDomid++;
    this.#makeConsoles(vm);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await Promise.all(
      this.#servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            if (!server.listening) return resolve();
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
  }

  // -------------------------------------------------------------------------------------------
  // model

  #host(i: number): HostObj {
    const h = this.#hosts[i];
    if (!h) throw new RangeError(`XapiPool: no host ${i}`);
    return h;
  }

  #vm(uuid: string): VmObj {
    const vm = this.#vmObjs.find((v) => v.sim.uuid === uuid);
    if (!vm) throw new Error(`XapiPool: no VM ${uuid}`);
    return vm;
  }

  #makeConsoles(vm: VmObj): void {
    for (const c of vm.consoles) this.#consoles.delete(c.ref);
    vm.consoles = (vm.sim.consoles ?? []).map((protocol) => ({ ref: newRef(), uuid: randomUUID(), protocol, vm }));
    for (const c of vm.consoles) this.#consoles.set(c.ref, c);
  }

  #isLive(vm: VmObj): boolean {
    return vm.sim.powerState === "Running" || vm.sim.powerState === "Paused";
  }

  #vmRecord(vm: VmObj): Record<string, unknown> {
    const live = this.#isLive(vm);
    return {
      uuid: vm.sim.uuid,
      allowed_operations: [],
      current_operations: {},
      name_label: vm.sim.name,
      name_description: "",
      power_state: vm.sim.powerState,
      user_version: 1,
      is_a_template: vm.sim.isTemplate ?? false,
      is_default_template: false,
      is_a_snapshot: false,
      domid: live ? vm.domid : -1,
      resident_on: live ? this.#host(vm.sim.host).ref : NULL_REF,
      affinity: NULL_REF,
      memory_static_max: 2147483648,
      VCPUs_max: 2,
      is_control_domain: vm.sim.isControlDomain ?? false,
      consoles: vm.consoles.map((c) => c.ref),
      other_config: {},
      tags: [],
    };
  }

  #consoleLocation(c: ConsoleObj): string {
    return `https://${this.#host(c.vm.sim.host).address}/console?uuid=${c.uuid}`;
  }

  #consoleRecord(c: ConsoleObj): Record<string, unknown> {
    return { uuid: c.uuid, protocol: c.protocol, location: this.#consoleLocation(c), VM: c.vm.ref, other_config: {} };
  }

  #hostRecord(h: HostObj): Record<string, unknown> {
    const i = this.#hosts.indexOf(h);
    return {
      uuid: h.uuid,
      name_label: h.name,
      name_description: "",
      hostname: h.name,
      address: h.address,
      enabled: true,
      API_version_major: 2,
      API_version_minor: 21,
      API_version_vendor: "XenSource",
      resident_VMs: this.#vmObjs.filter((v) => this.#isLive(v) && v.sim.host === i).map((v) => v.ref),
      other_config: {},
    };
  }

  #poolRecord(): Record<string, unknown> {
    return { uuid: this.#poolUuid, name_label: "sim-pool", name_description: "", master: this.#host(0).ref, other_config: {} };
  }

  // -------------------------------------------------------------------------------------------
  // XenAPI

  #call(hostIndex: number, method: string, params: unknown[]): CallResult {
    this.stats.calls[method] = (this.stats.calls[method] ?? 0) + 1;
    // A pool member refuses logins (and, here, every call) with the master's address.
    if (hostIndex !== 0) return fail("HOST_IS_SLAVE", this.#host(0).address);

    if (method === "session.login_with_password") {
      // XAPI takes (uname, pwd[, version[, originator]]): old clients send only two.
      if (params.length < 2 || params.length > 4) return fail("MESSAGE_PARAMETER_COUNT_MISMATCH", method, "4", String(params.length));
      const [user, pw] = params;
      if (user !== this.#username || pw !== this.#password) {
        this.stats.failedLogins++;
        return fail("SESSION_AUTHENTICATION_FAILED", String(user), "Authentication failure");
      }
      const ref = newRef();
      this.#sessions.set(ref, { uuid: randomUUID(), user: this.#username });
      this.stats.logins++;
      return ok(ref);
    }

    const dot = method.indexOf(".");
    const cls = method.slice(0, dot);
    const name = method.slice(dot + 1);
    const handler = dot > 0 ? this.#method(cls, name) : undefined;
    if (!handler) return fail("MESSAGE_METHOD_UNKNOWN", method);
    if (params.length !== handler.arity) {
      return fail("MESSAGE_PARAMETER_COUNT_MISMATCH", method, String(handler.arity), String(params.length));
    }
    const session = params[0];
    if (typeof session !== "string" || !this.#sessions.has(session)) return fail("SESSION_INVALID", String(session));
    return handler.run(session, params.slice(1));
  }

  #method(cls: string, name: string): { arity: number; run(session: string, args: unknown[]): CallResult } | undefined {
    if (cls === "session") {
      if (name === "logout") {
        return {
          arity: 1,
          run: (session) => {
            this.#sessions.delete(session);
            this.stats.logouts++;
            return ok(null);
          },
        };
      }
      return undefined;
    }
    if (cls === "host" && name === "get_server_certificate") {
      return {
        arity: 2,
        run: (_s, [ref]) => {
          const h = this.#hosts.find((x) => x.ref === ref);
          return h ? ok(h.certPem) : fail("HANDLE_INVALID", "host", String(ref));
        },
      };
    }
    const impl = this.#classes[cls];
    if (!impl) return undefined;
    const withRecord = (ref: unknown, f: (r: Record<string, unknown>) => unknown): CallResult => {
      const r = typeof ref === "string" ? impl.record(ref) : undefined;
      return r ? ok(f(r)) : fail("HANDLE_INVALID", cls, String(ref));
    };
    switch (name) {
      case "get_all":
        return { arity: 1, run: () => ok(impl.all()) };
      case "get_all_records":
        return { arity: 1, run: () => ok(Object.fromEntries(impl.all().map((ref) => [ref, impl.record(ref)]))) };
      case "get_record":
        return { arity: 2, run: (_s, [ref]) => withRecord(ref, (r) => r) };
      case "get_by_uuid":
        return {
          arity: 2,
          run: (_s, [uuid]) => {
            const ref = typeof uuid === "string" ? impl.byUuid(uuid) : undefined;
            return ref ? ok(ref) : fail("UUID_INVALID", cls, String(uuid));
          },
        };
    }
    if (name.startsWith("get_")) {
      const field = name.slice(4);
      if (impl.fields.includes(field)) return { arity: 2, run: (_s, [ref]) => withRecord(ref, (r) => r[field]) };
    }
    return undefined;
  }

  async #onRequest(hostIndex: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    const isXml = req.method === "POST" && path === "/";
    const isJson = req.method === "POST" && path === "/jsonrpc" && this.jsonRpc;
    if (!isXml && !isJson) {
      req.resume();
      const body = "<html><body><h1>HTTP 404 not found</h1>The requested resource was not found.</body></html>";
      res.writeHead(404, "Not Found", {
        "content-type": "text/html",
        connection: "close",
        "cache-control": "no-cache, no-store",
      });
      res.end(body);
      return;
    }
    let body: string;
    try {
      body = await readBody(req, 4 << 20);
    } catch {
      res.destroy();
      return;
    }
    if (isXml) {
      let reply: string;
      try {
        const call = parseXmlRpcCall(body);
        reply = formatXmlRpcResult(this.#call(hostIndex, call.method, call.params));
      } catch (err) {
        reply = formatXmlRpcResult(fail("XMLRPC_UNMARSHAL_FAILURE", (err as Error).message));
      }
      res.writeHead(200, { "content-type": "text/xml", "cache-control": "no-cache, no-store" });
      res.end(reply);
      return;
    }
    let reply: string;
    try {
      const call = parseJsonRpcCall(body);
      reply = formatJsonRpcResult(this.#call(hostIndex, call.method, call.params), call.id, call.v2);
    } catch (err) {
      reply = formatJsonRpcWireError((err as Error).message);
    }
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache, no-store" });
    res.end(reply);
  }

  // -------------------------------------------------------------------------------------------
  // CONNECT /console

  #onConnect(hostIndex: number, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#track(socket);
    socket.pause();
    socket.on("error", () => socket.destroy());
    (socket as Socket).setNoDelay?.(true);

    const url = req.url ?? "";
    const headers: Record<string, string> = {};
    let cookieHeader: string | undefined;
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i]!.toLowerCase();
      const v = req.rawHeaders[i + 1]!;
      headers[k] = v;
      if (k === "cookie") cookieHeader = v; // a later Cookie header replaces an earlier one
    }
    this.stats.connects.push({
      host: this.#host(hostIndex).address,
      requestLine: `${req.method} ${url} HTTP/${req.httpVersion}`,
      headers,
      cookieHeader,
      rawHeaders: [...req.rawHeaders],
    });
    const version = req.httpVersion === "1.0" ? "1.0" : "1.1";

    const { path, query } = parseQuery(url);
    // http_svr routes by longest prefix; a CONNECT nothing handles gets default_callback's 403.
    if (!path.startsWith("/console")) return this.#refuse(socket, 403, version);

    // Xapi_http: session_id from the cookies first, then from the query string.
    const cookies = cookieHeader === undefined ? [] : parseXapiCookies(cookieHeader);
    const sessionRef = assoc(cookies, "session_id") ?? assoc(query, "session_id");
    const authorised = sessionRef !== undefined ? this.#sessions.has(sessionRef) : this.#basicAuth(headers.authorization);
    if (!authorised) return this.#refuse(socket, 401, version);

    const cons = this.#consoleOfQuery(query);
    if (!cons) return this.#refuse(socket, 500, version);

    const fault = this.#faults.get(cons.vm.sim.uuid);
    if (fault === "no-reply") {
      socket.resume(); // read and drop; never answer
      return;
    }
    if (fault === "eof-after-200") {
      this.#endSoon(socket, Buffer.from(CONNECT_OK, "latin1"));
      return;
    }
    if (fault !== undefined) return this.#refuse(socket, fault, version);

    // check_vm_is_running_here: power_state must be Running (not Paused) and resident here.
    if (cons.vm.sim.powerState !== "Running" || cons.vm.sim.host !== hostIndex) {
      return this.#refuse(socket, 500, version);
    }
    // address_of_console: no VNC endpoint for a text (vt100) or rdp console.
    if (cons.protocol !== "rfb") return this.#refuse(socket, 404, version);

    this.#proxy(socket, head);
  }

  #basicAuth(authorization: string | undefined): boolean {
    if (!authorization?.startsWith("Basic ")) return false;
    const userpass = Buffer.from(authorization.slice(6), "base64").toString("utf8");
    const colon = userpass.indexOf(":");
    return colon >= 0 && userpass.slice(0, colon) === this.#username && userpass.slice(colon + 1) === this.#password;
  }

  /** console_of_request: ?uuid= names a VM (its first rfb console) or a console; ?ref= likewise by ref. */
  #consoleOfQuery(query: [string, string][]): ConsoleObj | undefined {
    const uuid = assoc(query, "uuid");
    const ref = assoc(query, "ref");
    let vm: VmObj | undefined;
    if (uuid !== undefined) {
      vm = this.#vmObjs.find((v) => v.sim.uuid === uuid);
      if (!vm) return [...this.#consoles.values()].find((c) => c.uuid === uuid);
    } else if (ref !== undefined) {
      vm = this.#vmObjs.find((v) => v.ref === ref);
      if (!vm) return this.#consoles.get(ref);
    } else {
      return undefined;
    }
    return vm.consoles.find((c) => c.protocol === "rfb");
  }

  #failureReply(code: 401 | 403 | 404 | 500 | 503, version: string): Buffer {
    const reason = REASONS[code]!;
    if (this.failureReplies === "minimal") {
      return Buffer.from(`HTTP/1.1 ${code} ${reason}\r\nconnection: close\r\n\r\n`, "latin1");
    }
    if (code === 404) {
      // Http_svr.headers s (Http.http_404_missing ()): headers only, capitalised, always HTTP/1.1.
      return Buffer.from("HTTP/1.1 404 Not Found\r\nConnection: close\r\nCache-Control: no-cache, no-store\r\n\r\n", "latin1");
    }
    let body: string;
    const extra: string[] = [];
    switch (code) {
      case 401:
        body = "<html><body><h1>HTTP 401 unauthorised</h1>Please check your credentials and retry.</body></html>";
        extra.push(`WWW-Authenticate: Basic realm="${CONSOLE_REALM}"`);
        break;
      case 403:
        body = "<html><body><h1>HTTP 403 forbidden</h1>Access to the requested resource is forbidden.</body></html>";
        break;
      case 500:
        body =
          "<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please wait a while and try again. " +
          "If the problem persists, please contact your support representative.<h1> Additional information </h1>Console.Failure</body></html>";
        break;
      case 503:
        body =
          `<html><body><h1>Connection Limit Exceeded</h1><p>User '${this.#username}' is currently connected to this console. ` +
          "No new connections are allowed. Please check the limit_console_sessions config and try again later.</p></body></html>";
        break;
    }
    // Http_svr.response_error_html: content-length first, then content-type, connection, cache-control.
    const head = [
      `HTTP/${version} ${code} ${reason}`,
      `content-length: ${Buffer.byteLength(body)}`,
      "content-type: text/html",
      "connection: close",
      "cache-control: no-cache, no-store",
      ...extra,
      "",
      "",
    ].join("\r\n");
    return Buffer.from(head + body, "latin1");
  }

  #refuse(socket: Duplex, code: 401 | 403 | 404 | 500 | 503, version: string): void {
    this.#endSoon(socket, this.#failureReply(code, version));
  }

  /** Write, then close the connection like xapi (Unix.close after the reply). */
  #endSoon(socket: Duplex, bytes: Buffer): void {
    socket.resume(); // drain whatever the client sends, so the close is a clean FIN
    socket.end(bytes);
    setTimeout(() => socket.destroy(), 2000).unref();
  }

  #proxy(client: Duplex, head: Buffer): void {
    const header = Buffer.from(CONNECT_OK, "latin1");
    const delivery = this.headerDelivery;
    const vnc = netConnect({ host: "127.0.0.1", port: this.#vncPort });
    this.#track(vnc);
    vnc.setNoDelay(true);
    vnc.on("error", () => {}); // replaced by closeBoth once bridged; the handlers below decide before that
    const closeBoth = (): void => {
      client.destroy();
      vnc.destroy();
    };

    const bridge = (): void => {
      if (client.destroyed) return closeBoth();
      if (head.length > 0) vnc.write(head);
      vnc.removeAllListeners("error");
      vnc.on("error", closeBoth);
      client.on("error", closeBoth);
      client.on("close", () => vnc.destroy());
      vnc.on("close", () => client.end());
      client.pipe(vnc);
      vnc.pipe(client);
    };

    if (delivery === "merged") {
      // Header and the VNC server's first bytes in ONE write (so one TLS record).
      const noData = (): void => {
        if (!client.destroyed && !client.writableEnded) this.#endSoon(client, header);
      };
      vnc.once("error", noData);
      vnc.once("end", noData);
      vnc.once("data", (chunk: Buffer) => {
        vnc.pause();
        vnc.removeListener("error", noData);
        vnc.removeListener("end", noData);
        if (client.destroyed) return closeBoth();
        client.write(Buffer.concat([header, chunk]));
        bridge();
      });
      return;
    }

    // xapi writes the 200 first, then opens the VNC socket: if that fails, the client sees 200 then EOF.
    let vncState: "pending" | "up" | "failed" = "pending";
    let headerSent = false;
    const maybeBridge = (): void => {
      if (!headerSent || client.destroyed) return;
      if (vncState === "up") bridge();
      else if (vncState === "failed") this.#endSoon(client, Buffer.alloc(0));
    };
    vnc.once("connect", () => {
      vncState = "up";
      maybeBridge();
    });
    vnc.once("error", () => {
      vncState = "failed";
      vnc.destroy();
      maybeBridge();
    });
    void this.#sendHeader(client, header, delivery).then(() => {
      headerSent = true;
      maybeBridge();
    });
  }

  async #sendHeader(client: Duplex, header: Buffer, delivery: Exclude<HeaderDelivery, "merged">): Promise<void> {
    if (delivery === "whole") {
      client.write(header);
      return;
    }
    const pieces: Buffer[] = [];
    if (delivery === "bytewise") {
      for (let i = 0; i < header.length; i++) pieces.push(header.subarray(i, i + 1));
    } else {
      const at = Math.max(0, Math.min(header.length, Math.floor(delivery.splitAt)));
      pieces.push(header.subarray(0, at), header.subarray(at));
    }
    let first = true;
    for (const piece of pieces) {
      if (piece.length === 0) continue;
      if (!first) await sleep(this.pieceDelayMs);
      first = false;
      if (client.destroyed) return;
      client.write(piece);
    }
  }

  // -------------------------------------------------------------------------------------------
  // servers

  #track(socket: Duplex): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    if (this.#stopped) socket.destroy();
  }

  #listen(hostIndex: number, port: number): Promise<number> {
    const h = this.#host(hostIndex);
    const server = createServer({ key: h.keyPem, cert: h.certPem }, (req, res) => {
      this.#onRequest(hostIndex, req, res).catch(() => res.destroy());
    });
    server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onConnect(hostIndex, req, socket, head));
    server.on("tlsClientError", () => {});
    this.#servers.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, h.address, () => {
        server.removeListener("error", reject);
        resolve((server.address() as { port: number }).port);
      });
    });
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.destroy();
        reject(new Error("request body too large"));
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
