/**
 * The CloudTower simulator's websockify: the cluster's direct form (`raw_token`) and the tower's
 * proxy form (the base64 `token`), each token good once, every accepted session bridged byte for
 * byte to a real VNC server on 127.0.0.1, as websockify does.
 */
import type { IncomingMessage } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import WebSocket, { WebSocketServer } from "ws";
import type { Grant } from "./api.ts";
import { refuseUpgrade } from "./http.ts";
import type { TowerStats, TowerVm } from "./tower.ts";

/** websocket → VNC: pause the VNC socket when this much is queued towards the client */
const HIGH_WATER = 1 << 20;

export interface WebsockifyOptions {
  vms: TowerVm[];
  stats: TowerStats;
  vncPort: number;
  grantsByRaw: Map<string, Grant>;
  grantsByToken: Map<string, Grant>;
  /** Read at each upgrade (the test's `refuseWebsockify`). */
  refuse(): boolean;
}

export class Websockify {
  readonly wss: WebSocketServer;
  private readonly o: WebsockifyOptions;

  constructor(options: WebsockifyOptions) {
    this.o = options;
    // websockify's CompatibleWebSocket: answer "binary" when offered, otherwise no subprotocol.
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has("binary") ? "binary" : false),
    });
  }

  onUpgrade(form: "direct" | "proxy", req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => {});
    const rawUrl = req.url ?? "";
    const refuse = (status: number, reason: string) => {
      this.o.stats.websockify.push({ url: rawUrl, form, accepted: false, reason });
      refuseUpgrade(socket, status, reason);
    };
    const url = new URL(rawUrl, "https://sim.invalid");
    if (url.pathname !== "/websockify/") return refuse(404, "no such path (websockify is at /websockify/)");
    if (this.o.refuse()) return refuse(403, "refused by the test (refuseWebsockify)");
    // URLSearchParams decodes as form data, as websockify's parse_qs does: a bare '+' becomes ' '.
    const token = url.searchParams.get("token");
    const uuid = url.searchParams.get("uuid");
    const host = url.searchParams.get("host");
    if (!token || !uuid || !host) return refuse(403, "missing token, uuid or host");
    const grant = form === "direct" ? this.o.grantsByRaw.get(token) : this.o.grantsByToken.get(token);
    if (!grant) {
      let reason = "invalid token";
      if (form === "proxy" && token.includes(" ")) reason += " (it holds a space: a '+' was not percent-encoded)";
      else if (form === "direct" && this.o.grantsByToken.has(token)) reason += " (the cluster takes raw_token, not the base64 token)";
      else if (form === "proxy" && this.o.grantsByRaw.has(token)) reason += " (the tower's proxy takes the base64 token, not raw_token)";
      return refuse(403, reason);
    }
    if (Date.now() >= grant.expiresAt) return refuse(403, "token expired");
    if (grant.used) return refuse(403, "token already used");
    if (uuid !== grant.uuid) return refuse(403, "uuid does not match the token's VM");
    if (host !== grant.hostIp) return refuse(403, "host does not match the VM's host");
    grant.used = true;
    const vm = this.o.vms.find((v) => v.id === grant.vmId);
    const running = vm !== undefined && vm.status !== "STOPPED";
    this.o.stats.websockify.push(
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
    const tcp = connect({ host: "127.0.0.1", port: this.o.vncPort });
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
  }}
