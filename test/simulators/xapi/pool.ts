/**
 * A XenServer / XCP-ng pool (XAPI) simulator for tests: one HTTPS server per host on port 443 (or
 * one shared high port, `port: 0`, for tests that must not need root) of a loopback address,
 * serving the XenAPI (JSON-RPC on POST /jsonrpc, XML-RPC on POST /) and the console tunnel
 * (`CONNECT /console?uuid=…`), bridged to a real VNC server on 127.0.0.1.
 *
 * The behaviour follows xapi's own source (ocaml/xapi/console.ml, xapi_http.ml,
 * ocaml/libs/http-lib/http.ml, http_svr.ml) as summarised in /work/shared/reference/xapi-console.md;
 * see README.md in this folder for the list of reproduced quirks.
 *
 * This file: the pool's options, controls and stats, its hosts' TLS servers. The model is
 * `model.ts`, the XenAPI `xenapi.ts`, the console tunnel `console-connect.ts`.
 */
import type { IncomingMessage } from "node:http";
import { createServer, type Server } from "node:https";
import type { Duplex } from "node:stream";
import { makeCertificates } from "./certs.ts";
import { type ConnectRecord, ConsoleConnect, type FailureReplies, type HeaderDelivery } from "./console-connect.ts";
import { type ConsoleFault, PoolModel, type SimVm } from "./model.ts";
import { XenApi } from "./xenapi.ts";

export { CONNECT_OK, type ConnectRecord, type FailureReplies, type HeaderDelivery } from "./console-connect.ts";
export type { ConsoleFault, SimVm } from "./model.ts";

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

const LOOPBACK = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function isLoopback(address: string): boolean {
  const m = LOOPBACK.exec(address);
  return m !== null && m.slice(1).every((n) => Number(n) <= 255);
}

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

  #model: PoolModel;
  #api: XenApi;
  #console: ConsoleConnect;
  #servers: Server[] = [];
  #sockets = new Set<Duplex>();
  #stopped = false;

  private constructor(
    options: XapiPoolOptions,
    certs: { hosts: { certPem: string; keyPem: string; fingerprint: string }[]; caPem: string | null },
  ) {
    this.hosts = [...options.hosts];
    this.port = options.port ?? 443;
    this.masterUrl = `https://${options.hosts[0]}`;
    this.caPem = certs.caPem;
    this.#model = new PoolModel(options, certs.hosts);
    this.vms = this.#model.vms;
    this.#api = new XenApi(this.#model, this.stats);
    this.#console = new ConsoleConnect(this.#model, this, this.stats.connects, options.vncPort, (socket) => this.#track(socket));
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
      await Promise.all(pool.#model.hosts.slice(1).map((_, i) => pool.#listen(i + 1, pool.port)));
      if (pool.port !== 443) pool.masterUrl = `https://${options.hosts[0]}:${pool.port}`;
    } catch (err) {
      await pool.stop();
      throw err;
    }
    return pool;
  }


  /** SHA-256 "AB:CD:…" of that host's certificate. */
  fingerprint(hostIndex: number): string {
    return this.#model.host(hostIndex).fingerprint;
  }

  certificatePem(hostIndex: number): string {
    return this.#model.host(hostIndex).certPem;
  }

  /** Make CONNECT for this VM fail like the real server does, or 200 then immediate EOF, or never reply. */
  setConsoleFault(vmUuid: string, fault: ConsoleFault | null): void {
    this.#model.vm(vmUuid);
    if (fault === null) this.#model.faults.delete(vmUuid);
    else this.#model.faults.set(vmUuid, fault);
  }

  /** Invalidate every session: later API calls fail SESSION_INVALID and CONNECT answers 401. */
  expireSessions(): void {
    this.#model.sessions.clear();
  }

  /** Move a VM to another host (its console uuids and refs change, like a migration). */
  migrate(vmUuid: string, host: number): void {
    this.#model.migrate(vmUuid, host);
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
  // servers

  #track(socket: Duplex): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    if (this.#stopped) socket.destroy();
  }

  #listen(hostIndex: number, port: number): Promise<number> {
    const h = this.#model.host(hostIndex);
    const server = createServer({ key: h.keyPem, cert: h.certPem }, (req, res) => {
      this.#api.onRequest(hostIndex, req, res, this.jsonRpc).catch(() => res.destroy());
    });
    server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#console.onConnect(hostIndex, req, socket, head));
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
