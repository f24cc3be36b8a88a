/**
 * `type: xenserver`: a XenServer / Citrix Hypervisor / XCP-ng pool. One XenAPI session serves
 * every console; each console is looked up afresh (its uuid changes when the VM migrates or
 * reboots) and tunnelled from the host the VM runs on, verified against the certificate the
 * master reports for that host, so one pin on the master covers the whole pool.
 */
import type { Duplex } from "node:stream";
import { CloseCode } from "../../../shared/protocol/close-codes.ts";
import type { HypervisorInventory, PowerState } from "../../../shared/protocol/messages.ts";
import type { XenServerHypervisor } from "../../config.ts";
import type { Log } from "../../log.ts";
import { withSlot } from "../handshake-limiter.ts";
import { PolledUpstream } from "../inventory-poller.ts";
import { describeTlsError, describeTrust, pinnedTrust, resolveTrust, type TlsTrust } from "../tls-trust.ts";
import { type CheckReport, socketFailure, UpstreamError } from "../upstream.ts";
import { CONSOLE_PORT, ConsoleUnauthorized, openXapiConsole } from "./console-tunnel.ts";
import { XenApi, XenApiError } from "./xenapi.ts";


interface VmRecord {
  uuid: string;
  name_label: string;
  power_state: string;
  is_a_template: boolean;
  is_control_domain: boolean;
  is_a_snapshot?: boolean;
}

interface HostRecord {
  address: string;
  name_label: string;
}

const POWER: Record<string, PowerState> = {
  Running: "running",
  Halted: "halted",
  Paused: "paused",
  Suspended: "suspended",
};

export class XenServerUpstream extends PolledUpstream {
  readonly type = "xenserver" as const;
  private readonly config: XenServerHypervisor;
  private readonly baseDir: string;
  private readonly api: XenApi;
  /** Trust per host address; the master's comes from the config, members' from the master. */
  private readonly trusts = new Map<string, TlsTrust>();

  constructor(config: XenServerHypervisor, baseDir: string, log: Log) {
    super(config, log);
    this.config = config;
    this.baseDir = baseDir;
    this.api = new XenApi({
      url: config.url,
      username: config.username,
      password: config.password,
      trustFor: (host, port) => this.masterTrust(host, port),
    });
  }

  protected release(): Promise<void> {
    return this.api.logout();
  }

  async openConsole(vm: string, signal: AbortSignal): Promise<Duplex> {
    try {
      return await this.tryOpen(vm, signal);
    } catch (err) {
      if (!(err instanceof ConsoleUnauthorized)) throw this.explain(err);
      // The session may have expired between the lookup and the tunnel: sign in again, once.
      await this.api.relogin().catch((e) => {
        throw this.explain(e);
      });
      try {
        return await this.tryOpen(vm, signal);
      } catch (again) {
        if (again instanceof ConsoleUnauthorized) {
          throw new UpstreamError(
            CloseCode.upstreamFailed,
            `XenServer pool ${this.name} refused the console session (401) even after signing in again.`,
          );
        }
        throw this.explain(again);
      }
    }
  }

  async check(): Promise<CheckReport> {
    const details: string[] = [];
    const url = new URL(this.config.url);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    try {
      const trust = await this.masterTrust(host, Number(url.port || 443));
      details.push(`reachable: ${host}:${url.port || 443}`);
      details.push(describeTrust(trust));
      await this.api.sessionRef();
      details.push(`signed in as ${this.config.username} (${this.api.wireFormat === "json" ? "JSON-RPC" : "XML-RPC"})`);
      const vms = await this.listVms();
      details.push(`${vms.length} VMs`);
      await this.api.logout();
      return { ok: true, details };
    } catch (err) {
      details.push(this.explain(err).message);
      return { ok: false, details };
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  private get consolePort(): number {
    return this.config.consolePort ?? CONSOLE_PORT;
  }

  private async tryOpen(vmUuid: string, signal: AbortSignal): Promise<Duplex> {
    let vmRef: string;
    try {
      vmRef = await this.api.call<string>("VM.get_by_uuid", vmUuid);
    } catch (err) {
      if (err instanceof XenApiError && err.code === "UUID_INVALID") {
        throw new UpstreamError(CloseCode.notFound, `Pool ${this.name} has no VM ${vmUuid}.`);
      }
      throw err;
    }
    const power = await this.api.call<string>("VM.get_power_state", vmRef);
    if (power !== "Running") {
      throw new UpstreamError(CloseCode.vmNotRunning, `The VM is ${power.toLowerCase()}: start it, then open its console.`);
    }
    const consoles = await this.api.call<string[]>("VM.get_consoles", vmRef);
    let rfb: string | undefined;
    for (const c of consoles) {
      if ((await this.api.call<string>("console.get_protocol", c)) === "rfb") {
        rfb = c;
        break;
      }
    }
    if (!rfb) throw new UpstreamError(CloseCode.notFound, "This VM has no graphical (RFB) console, only a text one.");
    const location = await this.api.call<string>("console.get_location", rfb);
    const host = new URL(location).hostname.replace(/^\[|\]$/g, "");
    const trust = await this.memberTrust(host);
    const session = await this.api.sessionRef();
    try {
      return await withSlot(this.limiter, host, signal, () =>
        openXapiConsole({ location, session, trust, signal, pool: this.name, port: this.consolePort }),
      );
    } catch (err) {
      // A member's certificate may have been renewed: ask the master again next time.
      if (host !== this.api.masterHost) this.trusts.delete(host);
      throw err;
    }
  }

  /** The master's trust, from the config (checking a pin on first use). */
  private async masterTrust(host: string, port: number): Promise<TlsTrust> {
    const known = this.trusts.get(host);
    if (known) return known;
    const trust = await resolveTrust(this.config.tls, this.baseDir, host, port);
    this.trusts.set(host, trust);
    return trust;
  }

  /**
   * A console host's trust. With a pin, a member is trusted through the certificate the master
   * reports for it (host.get_server_certificate), fetched over the verified master connection.
   */
  private async memberTrust(host: string): Promise<TlsTrust> {
    const known = this.trusts.get(host);
    if (known) return known;
    const policy = this.config.tls;
    if (!policy || !("fingerprint" in policy)) return this.masterTrust(host, this.consolePort);
    const hosts = await this.api.call<Record<string, HostRecord>>("host.get_all_records");
    const ref = Object.entries(hosts).find(([, h]) => h.address === host)?.[0];
    if (!ref) {
      throw new UpstreamError(CloseCode.upstreamFailed, `The console is on ${host}, which is not a host of pool ${this.name}.`);
    }
    const pem = await this.api.call<string>("host.get_server_certificate", ref);
    const trust = pinnedTrust(pem);
    this.trusts.set(host, trust);
    return trust;
  }

  protected async listVms(): Promise<HypervisorInventory["vms"]> {
    const records = await this.api.call<Record<string, VmRecord>>("VM.get_all_records");
    return Object.values(records)
      .filter((v) => !v.is_a_template && !v.is_control_domain && !v.is_a_snapshot)
      .map((v) => ({ id: v.uuid, name: v.name_label, powerState: POWER[v.power_state] ?? "unknown" }));
  }


  /** Any failure, as a message a person can act on. */
  protected explain(err: unknown): UpstreamError {
    if (err instanceof UpstreamError) return err;
    if (err instanceof XenApiError) {
      switch (err.code) {
        case "SESSION_AUTHENTICATION_FAILED":
          return new UpstreamError(CloseCode.upstreamFailed, `XenServer pool ${this.name} rejected the connector's username or password.`);
        case "HOST_IS_SLAVE":
          return new UpstreamError(CloseCode.upstreamFailed, `XenServer pool ${this.name}: the configured host is not the pool master.`);
        case "RBAC_PERMISSION_DENIED":
          return new UpstreamError(CloseCode.forbidden, `The XenServer account of pool ${this.name} is not allowed to do that (${err.params[0] ?? "RBAC"}).`);
        default:
          return new UpstreamError(CloseCode.upstreamFailed, `XenServer pool ${this.name} failed: ${err.message}.`);
      }
    }
    const e = err as NodeJS.ErrnoException;
    const host = new URL(this.config.url).hostname;
    const trust = this.trusts.get(host) ?? { mode: "system" as const };
    return new UpstreamError(
      CloseCode.upstreamFailed,
      describeTlsError(e, host, trust) ??
        socketFailure(
          e,
          `XenServer pool ${this.name} (${host})`,
          `XenServer pool ${this.name} (${host}) refused the connection: is its master up, and its URL's port right?`,
        ).message,
    );
  }
}
