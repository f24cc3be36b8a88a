/**
 * `type: cloudtower`: SmartX CloudTower. The connector signs in to the tower, fetches fresh VNC
 * information for every console (tokens are short-lived and single use), opens the cluster's
 * websockify endpoint itself, and relays its binary frames. The edge never sees tower credentials.
 */
import { Agent } from "node:https";
import type { Duplex } from "node:stream";
import WebSocket, { createWebSocketStream } from "ws";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import type { HypervisorInventory, PowerState } from "../../shared/protocol/messages.ts";
import { directVncUrl, proxiedVncUrl, type VncInfo } from "./cloudtower-urls.ts";
import type { CloudTowerHypervisor } from "../config.ts";
import type { Log } from "../log.ts";
import { withSlot } from "./handshake-limiter.ts";
import { httpsPost } from "./https-post.ts";
import { PolledUpstream } from "./inventory-poller.ts";
import { describeTlsError, describeTrust, peerCertificate, resolveTrust, type TlsTrust, tlsOptions } from "./tls-trust.ts";
import { awaitGreeting, type CheckReport, socketFailure, UpstreamError } from "./upstream.ts";

const OPEN_TIMEOUT_MS = 15_000;

const VNC_QUERY = "query vnc($input: VncInput!) { vnc(input: $input) { vm_uuid host_ip cluster_ip raw_token token } }";
const VMS_QUERY = "query vms { vms { id name status } }";

const POWER: Record<string, PowerState> = {
  RUNNING: "running",
  STOPPED: "halted",
  SUSPENDED: "suspended",
  PAUSED: "paused",
};

class Unauthorized extends Error {}

export class CloudTowerUpstream extends PolledUpstream {
  readonly type = "cloudtower" as const;
  private readonly config: CloudTowerHypervisor;
  private readonly baseDir: string;
  private readonly tower: URL;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  private trust: TlsTrust | null = null;
  /** How to reach each cluster: direct under the policy, or via the tower's proxy. */
  private readonly clusterRoute = new Map<string, { direct: true; trust: TlsTrust } | { direct: false }>();
  private token: string | null = null;

  constructor(config: CloudTowerHypervisor, baseDir: string, log: Log) {
    super(config, log);
    this.config = config;
    this.baseDir = baseDir;
    this.tower = new URL(config.url);
  }

  protected async release(): Promise<void> {
    this.agent.destroy();
  }

  /** Fresh VNC information for one VM (also used for the edge's LAN URLs). */
  async vncInfo(vm: string): Promise<VncInfo> {
    const reply = await this.graphql<{ vnc: VncInfo | null }>("vnc", VNC_QUERY, { input: { vm: { id: vm } } });
    if (!reply.data?.vnc) {
      const message = reply.errors?.[0]?.message ?? "";
      if (/not.*(running|started|powered)|stopped|power(ed)? off|shut/i.test(message)) {
        throw new UpstreamError(CloseCode.vmNotRunning, "The VM is powered off: start it, then open its console.");
      }
      throw new UpstreamError(CloseCode.notFound, `CloudTower ${this.name} has no VM ${vm}${message ? ` (${message})` : ""}.`);
    }
    return reply.data.vnc;
  }

  /** The seed's two LAN URLs for a VM. */
  async lanUrls(vm: string): Promise<{ direct: string; proxied: string }> {
    const info = await this.vncInfo(vm);
    return { direct: directVncUrl(info), proxied: proxiedVncUrl(this.tower.host, info) };
  }

  async openConsole(vm: string, signal: AbortSignal): Promise<Duplex> {
    try {
      const current = this.inventory().vms.find((v) => v.id === vm);
      if (current && current.powerState === "halted") {
        throw new UpstreamError(CloseCode.vmNotRunning, "The VM is powered off: start it, then open its console.");
      }
      const info = await this.vncInfo(vm);
      const route = await this.routeTo(info.cluster_ip);
      const url = route.direct ? directVncUrl(info) : proxiedVncUrl(this.tower.host, info);
      const host = route.direct ? info.cluster_ip : this.tower.hostname;
      const trust = route.direct ? route.trust : await this.towerTrust();
      return await withSlot(this.limiter, host, signal, async () =>
        awaitGreeting(await this.openWebsockify(url, host, trust, signal), { signal }),
      );
    } catch (err) {
      throw this.explain(err);
    }
  }

  async check(): Promise<CheckReport> {
    const details: string[] = [];
    try {
      const trust = await this.towerTrust();
      details.push(`reachable: ${this.tower.host}`);
      details.push(describeTrust(trust));
      await this.login();
      details.push(`signed in as ${this.config.username}`);
      details.push(`${(await this.listVms()).length} VMs`);
      return { ok: true, details };
    } catch (err) {
      details.push(this.explain(err).message);
      return { ok: false, details };
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  private async towerTrust(): Promise<TlsTrust> {
    this.trust ??= await resolveTrust(this.config.tls, this.baseDir, this.tower.hostname, Number(this.tower.port || 443));
    return this.trust;
  }

  /**
   * The cluster's websockify is reached directly under the configured policy. A fingerprint pins
   * the tower's certificate; when the cluster presents another one, the console goes through the
   * tower's own proxy instead, which the pin does cover.
   */
  private async routeTo(cluster: string): Promise<{ direct: true; trust: TlsTrust } | { direct: false }> {
    const known = this.clusterRoute.get(cluster);
    if (known) return known;
    const tower = await this.towerTrust();
    let route: { direct: true; trust: TlsTrust } | { direct: false };
    if (tower.mode === "pinned") {
      const seen = await peerCertificate(cluster, 443).catch(() => null);
      route = seen?.fingerprint === tower.fingerprint ? { direct: true, trust: tower } : { direct: false };
      if (!route.direct) this.log.info({ event: "cloudtower.via_proxy", cluster }, "cluster certificate not pinned: using the tower's proxy");
    } else {
      route = { direct: true, trust: tower };
    }
    this.clusterRoute.set(cluster, route);
    return route;
  }

  private openWebsockify(url: string, host: string, trust: TlsTrust, signal: AbortSignal): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, ["binary"], {
        ...tlsOptions(trust, host),
        handshakeTimeout: OPEN_TIMEOUT_MS,
        perMessageDeflate: false,
        maxPayload: 64 * 1024 * 1024,
      });
      const onAbort = () => {
        ws.terminate();
        reject(new UpstreamError(CloseCode.ended, "The console request was cancelled."));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      ws.once("unexpected-response", (_req, res) => {
        res.resume();
        ws.terminate();
        reject(
          new UpstreamError(
            CloseCode.upstreamFailed,
            `CloudTower's console endpoint refused the session (HTTP ${res.statusCode}): the VM may be off or the token expired. Try again.`,
          ),
        );
      });
      ws.once("error", (err: NodeJS.ErrnoException) => {
        signal.removeEventListener("abort", onAbort);
        reject(
          new UpstreamError(
            CloseCode.upstreamFailed,
            describeTlsError(err, host, trust) ??
              socketFailure(err, `CloudTower's console endpoint ${host}`, `CloudTower's console endpoint ${host} refused the connection: is the cluster up?`)
                .message,
          ),
        );
      });
      ws.once("open", () => {
        signal.removeEventListener("abort", onAbort);
        const stream = createWebSocketStream(ws);
        stream.on("error", () => {}); // the relay attaches its own handler
        resolve(stream);
      });
    });
  }

  private async login(): Promise<string> {
    const reply = await this.post("/v2/api/login", {
      username: this.config.username,
      password: this.config.password,
      source: "LOCAL",
    });
    const token = (reply.body as { data?: { token?: string } } | null)?.data?.token;
    if (reply.status !== 200 || !token) {
      if (reply.status === 400 || reply.status === 401 || reply.status === 403) {
        throw new UpstreamError(CloseCode.upstreamFailed, `CloudTower ${this.name} rejected the connector's username or password.`);
      }
      throw new UpstreamError(CloseCode.upstreamFailed, `CloudTower ${this.name} login failed (HTTP ${reply.status}).`);
    }
    this.token = token;
    return token;
  }

  /** A GraphQL call; signs in when needed and once more if the token has expired. */
  private async graphql<T>(
    operationName: string,
    query: string,
    variables: unknown = {},
  ): Promise<{ data?: T; errors?: { message: string }[] }> {
    for (let attempt = 0; ; attempt++) {
      const token = this.token ?? (await this.login());
      try {
        const reply = await this.post("/api", { operationName, variables, query }, token);
        if (reply.status === 401) throw new Unauthorized();
        if (reply.status !== 200 || reply.body === null) {
          throw new UpstreamError(CloseCode.upstreamFailed, `CloudTower ${this.name} answered HTTP ${reply.status}.`);
        }
        return reply.body as { data?: T; errors?: { message: string }[] };
      } catch (err) {
        if (!(err instanceof Unauthorized) || attempt > 0) {
          if (err instanceof Unauthorized) {
            throw new UpstreamError(CloseCode.upstreamFailed, `CloudTower ${this.name} refused the connector even after signing in again.`);
          }
          throw err;
        }
        this.token = null;
      }
    }
  }

  private async post(path: string, body: unknown, token?: string): Promise<{ status: number; body: unknown }> {
    const reply = await httpsPost({
      base: this.tower,
      path,
      body: JSON.stringify(body),
      // CloudTower takes the token as the raw Authorization value, with no "Bearer".
      headers: { "Content-Type": "application/json", ...(token ? { Authorization: token } : {}) },
      trust: await this.towerTrust(),
      agent: this.agent,
      what: "CloudTower",
    });
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(reply.body);
    } catch {}
    return { status: reply.status, body: parsed };
  }

  protected async listVms(): Promise<HypervisorInventory["vms"]> {
    const reply = await this.graphql<{ vms: { id: string; name: string; status: string }[] }>("vms", VMS_QUERY);
    if (!reply.data?.vms) throw new UpstreamError(CloseCode.upstreamFailed, `CloudTower ${this.name} did not list its VMs.`);
    return reply.data.vms.map((v) => ({ id: v.id, name: v.name, powerState: POWER[v.status] ?? ("unknown" as const) }));
  }


  protected explain(err: unknown): UpstreamError {
    if (err instanceof UpstreamError) return err;
    const e = err as NodeJS.ErrnoException;
    const host = this.tower.hostname;
    return new UpstreamError(
      CloseCode.upstreamFailed,
      describeTlsError(e, host, this.trust ?? { mode: "system" }) ??
      socketFailure(e, `CloudTower ${this.name} (${host})`, `CloudTower ${this.name} (${host}) refused the connection: is it up, and its URL's port right?`)
        .message,
    );
  }
}
