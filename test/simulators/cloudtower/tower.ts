/**
 * A SmartX CloudTower simulator for tests: the tower (login + GraphQL `/api` + the tower's
 * websockify proxy) and one cluster (websockify), each on port 443 of its own loopback address
 * with its own self-signed certificate. Every accepted websockify session is bridged to a real
 * VNC server on 127.0.0.1:<vncPort>, byte for byte, as websockify does.
 *
 * What comes from CloudTower's documentation and what is assumed: see README.md beside this file.
 *
 * This file: the options, test controls and stats, the two TLS servers. The login and GraphQL
 * API is `api.ts`, websockify `websockify.ts`, what the servers share `http.ts`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { createServer, type Server } from "node:https";
import { isIPv4, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { TowerApi } from "./api.ts";
import { type Certificate, errorBody, listen, selfSigned, sendJson, sendText } from "./http.ts";
import { Websockify } from "./websockify.ts";

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

interface Parts {
  options: CloudTowerOptions;
  towerCert: Certificate;
  clusterCert: Certificate;
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

  private readonly towerCert: Certificate;
  private readonly clusterCert: Certificate;
  private readonly api: TowerApi;
  private readonly websockify: Websockify;
  private readonly sockets = new Set<Socket>();
  private readonly towerServer: Server;
  private readonly clusterServer: Server;
  private stopped = false;

  private constructor(parts: Parts) {
    const o = parts.options;
    this.tower = o.tower;
    this.cluster = o.cluster;
    this.url = `https://${o.tower}`;
    this.vms = (o.vms ?? DEFAULT_VMS).map((vm) => ({ ...vm }));
    this.towerCert = parts.towerCert;
    this.clusterCert = parts.clusterCert;
    this.api = new TowerApi({
      vms: this.vms,
      stats: this.stats,
      cluster: this.cluster,
      username: o.username ?? "admin",
      password: o.password ?? "secret",
      tokenTtlMs: o.tokenTtlMs ?? Infinity,
      vncTokenTtlMs: o.vncTokenTtlMs ?? DEFAULT_VNC_TOKEN_TTL_MS,
      forceSpecialTokenChars: () => this.forceSpecialTokenChars,
    });
    this.websockify = new Websockify({
      vms: this.vms,
      stats: this.stats,
      vncPort: o.vncPort,
      grantsByRaw: this.api.grantsByRaw,
      grantsByToken: this.api.grantsByToken,
      refuse: () => this.refuseWebsockify,
    });

    this.towerServer = createServer({ key: this.towerCert.key, cert: this.towerCert.cert }, (req, res) => {
      this.api.onRequest(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, errorBody(req, 500, String(err), "INTERNAL_ERROR"));
        else res.destroy();
      });
    });
    this.towerServer.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.websockify.onUpgrade("proxy", req, socket, head),
    );

    this.clusterServer = createServer({ key: this.clusterCert.key, cert: this.clusterCert.cert }, (req, res) => {
      // The cluster serves only websockify here.
      sendText(res, 404, "404 Not Found\n");
    });
    this.clusterServer.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.websockify.onUpgrade("direct", req, socket, head),
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
    this.api.sessions.clear();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const ws of this.websockify.wss.clients) ws.terminate();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    const close = (server: Server) =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
      });
    await Promise.all([close(this.towerServer), close(this.clusterServer)]);
    this.websockify.wss.close();
  }
}
