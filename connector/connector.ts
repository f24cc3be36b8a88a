/**
 * The connector's life: start the upstreams, dial the edge, redial forever with backoff, keep the
 * edge's inventory current, drain on shutdown.
 */
import { hostname } from "node:os";
import WebSocket from "ws";
import { CloseCode } from "../shared/protocol/close-codes.ts";
import { MAX_MESSAGE_BYTES } from "../shared/protocol/limits.ts";
import type { ConnectorConfig } from "./config.ts";
import type { Log } from "./log.ts";
import { Backoff } from "./tunnel/backoff.ts";
import { Tunnel } from "./tunnel/tunnel.ts";
import { GreetingCache } from "./tunnel/greeting-cache.ts";
import type { Upstream } from "./upstreams/upstream.ts";

import { SOFTWARE } from "./version.ts";

/**
 * WebSocket masking keeps attacker-chosen client bytes from looking like HTTP to a cleartext
 * intermediary. Inside TLS, or on loopback, there is none, and masking in JavaScript (ws without
 * the native bufferutil) plus its copy were the connector's largest CPU cost per byte. An all-zero
 * mask is valid and makes ws skip both.
 */
function maskingProtectsNothing(url: string): boolean {
  const u = new URL(url);
  return u.protocol === "wss:" || ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname);
}

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}
const HANDSHAKE_TIMEOUT_MS = 15_000;

export interface ConnectorStats {
  connected: boolean;
  connects: number;
  /** WebSocket messages sent to the edge (the edge's host bills incoming messages). */
  messagesSent: number;
  streams: number;
  bufferedBytes: number;
}

export class Connector {
  private readonly config: ConnectorConfig;
  private readonly upstreams: Map<string, Upstream>;
  /** VNC servers' greetings, kept across tunnels (see tunnel/greeting-cache.ts). */
  private readonly greetings = new GreetingCache();
  private readonly log: Log;
  private readonly backoff = new Backoff();
  private tunnel: Tunnel | null = null;
  /** The socket being dialled, before it becomes a tunnel (stop() must not leave it behind). */
  private dialing: WebSocket | null = null;
  private redial: NodeJS.Timeout | null = null;
  private stopping = false;
  private connects = 0;
  /** Messages sent by earlier tunnels (the live one counts its own). */
  private messagesSentBefore = 0;

  constructor(config: ConnectorConfig, upstreams: Upstream[], log: Log) {
    this.config = config;
    this.upstreams = new Map(upstreams.map((u) => [u.name, u]));
    this.log = log;
    for (const u of upstreams) {
      u.onChange(() => {
        // Called from pollers' timers: nothing may throw out of here.
        try {
          this.tunnel?.sendInventory(this.inventory());
        } catch (err) {
          this.log.error({ event: "inventory.unsendable", error: (err as Error).message }, "the inventory could not be sent");
        }
      });
    }
  }

  /** Dials at once: hypervisors that are slow to answer join the inventory when they do. */
  async start(): Promise<void> {
    for (const u of this.upstreams.values()) {
      u.start().catch((err: Error) =>
        this.log.error({ event: "hypervisor.start_failed", hypervisor: u.name, error: err.message }, "hypervisor failed to start"),
      );
    }
    this.dial();
  }

  stats(): ConnectorStats {
    return {
      connected: this.tunnel?.welcomed ?? false,
      connects: this.connects,
      messagesSent: this.messagesSentBefore + (this.tunnel?.messagesSent ?? 0),
      streams: this.tunnel?.streams.size ?? 0,
      bufferedBytes: this.tunnel?.bufferedBytes ?? 0,
    };
  }

  /**
   * Graceful stop: stop taking new consoles (INVENTORY with `draining: true` to an edge that
   * accepted `drain`, an empty inventory to an older edge, either steers new consoles to other
   * connectors), let open consoles run for up to `graceMs`, then close.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.redial) clearTimeout(this.redial);
    const tunnel = this.tunnel;
    if (tunnel?.welcomed) {
      tunnel.drain(this.inventory());
      const deadline = Date.now() + graceMs;
      while (tunnel.streams.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      for (const stream of [...tunnel.streams.values()]) {
        tunnel.closeStream(stream, CloseCode.connectorOffline, "The connector was stopped.");
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    tunnel?.close(CloseCode.goingAway, "connector shutting down");
    this.dialing?.terminate();
    await Promise.all([...this.upstreams.values()].map((u) => u.stop().catch(() => {})));
    this.log.info({ event: "connector.stopped" }, "connector stopped");
  }

  private inventory() {
    return [...this.upstreams.values()].map((u) => u.inventory());
  }

  private dial(): void {
    if (this.stopping) return;
    const url = this.config.connectUrl;
    this.log.info({ event: "edge.dialing", url }, "dialing the edge");
    const ws = new WebSocket(url, {
      headers: {
        Authorization: `Bearer ${this.config.token}`,
        // A Cloudflare Access application over the edge's hostname admits the connector by its
        // service token; these headers are never logged (see log.ts).
        ...(this.config.access
          ? { "CF-Access-Client-Id": this.config.access.clientId, "CF-Access-Client-Secret": this.config.access.clientSecret }
          : {}),
      },
      maxPayload: MAX_MESSAGE_BYTES,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      perMessageDeflate: false,
      ...(maskingProtectsNothing(url) ? { generateMask: zeroMask } : {}),
    });
    this.dialing = ws;
    ws.on("unexpected-response", (_req, res) => {
      const hint =
        res.statusCode === 401 ? "the connector token was refused: check `token`" :
        res.statusCode === 404 ? "the site does not exist (or the edge URL is wrong)" :
        res.statusCode === 302 || res.statusCode === 403
          ? this.config.access
            ? "Cloudflare Access refused the service token: check `access` and the application's Service Auth policy"
            : "Cloudflare Access may protect the edge: give the connector a service token (`access`) or bypass /connect"
          :
        `HTTP ${res.statusCode}`;
      this.log.error({ event: "edge.refused", status: res.statusCode }, `the edge refused the connection: ${hint}`);
      res.resume();
      ws.terminate();
    });
    ws.on("error", (err) => {
      this.log.warn({ event: "edge.error", error: err.message }, "connection to the edge failed");
    });
    ws.on("open", () => {
      this.dialing = null;
      if (this.stopping) {
        ws.close(CloseCode.goingAway, "connector shutting down");
        return;
      }
      this.tunnel = new Tunnel({
        ws,
        upstreams: this.upstreams,
        hello: { software: SOFTWARE, hostname: hostname(), hypervisors: this.inventory() },
        log: this.log,
        accepting: () => !this.stopping,
        greetings: this.greetings,
        onWelcome: (welcome) => {
          this.connects++;
          this.backoff.connected();
          this.log.info(
            { event: "edge.connected", site: welcome.site, connectorId: welcome.connectorId, protocol: welcome.protocol },
            "connected to the edge",
          );
        },
      });
    });
    ws.on("close", (code, reason) => {
      if (this.dialing === ws) this.dialing = null;
      const was = this.tunnel;
      this.tunnel = null;
      this.messagesSentBefore += was?.messagesSent ?? 0;
      if (this.stopping) return;
      const delay = this.backoff.next();
      const text = reason.toString();
      const level = code === CloseCode.upgradeRequired || code === CloseCode.protocolError ? "error" : "warn";
      this.log[level](
        { event: "edge.disconnected", code, reason: text, streams: was?.streams.size ?? 0, retryInMs: delay },
        code === CloseCode.upgradeRequired ? `the edge needs another connector version: ${text}` : "disconnected from the edge",
      );
      this.redial = setTimeout(() => this.dial(), delay);
    });
  }
}
