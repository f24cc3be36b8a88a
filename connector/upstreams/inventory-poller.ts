/**
 * Keeps a hypervisor's VM list current by polling it, and tells listeners only when something a
 * user would see changed (a VM, a power state, reachability or its error).
 */
import type { Duplex } from "node:stream";
import type { HypervisorInventory, Vm } from "../../shared/protocol/messages.ts";
import type { Log } from "../log.ts";
import { DEFAULT_MAX_CONCURRENT_HANDSHAKES, HandshakeLimiter } from "./handshake-limiter.ts";
import type { CheckReport, Upstream, UpstreamError } from "./upstream.ts";

const REFRESH_MS = 30_000;

export interface PollerOptions {
  name: string;
  type: HypervisorInventory["type"];
  log: Log;
  list(): Promise<Vm[]>;
  /** A failure as the message people will see in the site's hypervisor list. */
  explain(err: unknown): UpstreamError;
}

export class InventoryPoller {
  current: HypervisorInventory;
  private readonly opts: PollerOptions;
  private readonly listeners: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: PollerOptions) {
    this.opts = opts;
    this.current = { name: opts.name, type: opts.type, reachable: false, error: "not contacted yet", vms: [] };
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    const { name, type, log } = this.opts;
    let next: HypervisorInventory;
    try {
      const vms = (await this.opts.list()).sort((a, b) => a.name.localeCompare(b.name));
      next = { name, type, reachable: true, vms };
    } catch (err) {
      const error = this.opts.explain(err).message;
      // Keep the last known VMs listed: a hiccup should not make them vanish from the edge.
      next = { name, type, reachable: false, error, vms: this.current.vms };
      if (this.current.error !== error) log.warn({ event: "hypervisor.unreachable", error }, "hypervisor not reachable");
    }
    if (JSON.stringify(next) === JSON.stringify(this.current)) return;
    if (next.reachable && !this.current.reachable) log.info({ event: "hypervisor.ready", vms: next.vms.length }, "inventory loaded");
    this.current = next;
    for (const l of this.listeners) l();
  }
}

/**
 * A hypervisor whose VM list comes from polling its API (XenServer, CloudTower): the inventory,
 * its listeners and the start/stop of the polling in one place; each type says how to list its
 * VMs, how to word a failure, and what to let go of when stopping.
 */
export abstract class PolledUpstream implements Upstream {
  abstract readonly type: HypervisorInventory["type"];
  readonly name: string;
  protected readonly log: Log;
  /** Console handshakes in flight per host (xapi, or a cluster's websockify). */
  protected readonly limiter: HandshakeLimiter;
  private readonly poller: InventoryPoller;

  constructor(config: { name: string; type: HypervisorInventory["type"]; maxConcurrentHandshakes?: number }, log: Log) {
    this.name = config.name;
    this.log = log.child({ hypervisor: config.name });
    this.limiter = new HandshakeLimiter(config.maxConcurrentHandshakes ?? DEFAULT_MAX_CONCURRENT_HANDSHAKES);
    this.poller = new InventoryPoller({
      name: config.name,
      type: config.type,
      log: this.log,
      list: () => this.listVms(),
      explain: (err) => this.explain(err),
    });
  }

  protected abstract listVms(): Promise<Vm[]>;
  /** A failure as the message people will see (inventory, console, `--check`). */
  protected abstract explain(err: unknown): UpstreamError;
  /** What to let go of once polling stopped (a session, pooled sockets). */
  protected abstract release(): Promise<void>;
  abstract openConsole(vm: string, signal: AbortSignal): Promise<Duplex>;
  abstract check(): Promise<CheckReport>;

  inventory(): HypervisorInventory {
    return this.poller.current;
  }

  onChange(listener: () => void): void {
    this.poller.onChange(listener);
  }

  start(): Promise<void> {
    return this.poller.start();
  }

  async stop(): Promise<void> {
    this.poller.stop();
    await this.release();
  }
}
