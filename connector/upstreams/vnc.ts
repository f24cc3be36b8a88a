/** `type: vnc`: plain RFB servers at addresses named in the connector's own config. */
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import type { HypervisorInventory } from "../../shared/protocol/messages.ts";
import type { VncHypervisor } from "../config.ts";
import { BlockReader } from "./block-reader.ts";
import { DEFAULT_MAX_CONCURRENT_HANDSHAKES, HandshakeLimiter, withSlot } from "./handshake-limiter.ts";
import { awaitGreeting, type CheckReport, socketFailure, type Upstream, UpstreamError } from "./upstream.ts";

const CONNECT_TIMEOUT_MS = 10_000;

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(address.slice(at + 1)) };
}

/**
 * `signal` aborts the connect only for `--check`: a console's connect runs to its end even if the
 * viewer leaves meanwhile, since a connection cut during the connect may already sit in the server's
 * queue, and the server would count it as a failed attempt (the greeting wait then finishes it).
 */
function dial(address: string, signal?: AbortSignal): Promise<Socket> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve, reject) => {
    // Console bytes are read into reused blocks (block-reader.ts), not a fresh buffer per read.
    const reader = new BlockReader();
    const socket = reader.bind(connect({ host, port, signal, timeout: CONNECT_TIMEOUT_MS, noDelay: true, onread: reader.onread }));
    const fail = (err: NodeJS.ErrnoException) => {
      socket.destroy();
      reject(err);
    };
    socket.once("error", fail);
    socket.once("timeout", () => fail(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" })));
    socket.once("connect", () => {
      socket.off("error", fail);
      socket.on("error", () => {}); // the relay attaches its own handler; never an unhandled error

      socket.setTimeout(0);
      socket.setKeepAlive(true, 30_000);
      resolve(socket);
    });
  });
}

export class VncUpstream implements Upstream {
  readonly type = "vnc" as const;
  readonly name: string;
  private readonly config: VncHypervisor;
  private readonly limiter: HandshakeLimiter;

  constructor(config: VncHypervisor) {
    this.name = config.name;
    this.config = config;
    this.limiter = new HandshakeLimiter(config.maxConcurrentHandshakes ?? DEFAULT_MAX_CONCURRENT_HANDSHAKES);
  }

  inventory(): HypervisorInventory {
    return {
      name: this.name,
      type: "vnc",
      reachable: true,
      // A plain VNC server has no power state the connector can see; it is up if it answers.
      vms: this.config.vms.map((vm) => ({ id: vm.id, name: vm.name ?? vm.id, powerState: "unknown" as const })),
    };
  }

  onChange(): void {}

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  async openConsole(vmId: string, signal: AbortSignal): Promise<Duplex> {
    const vm = this.config.vms.find((v) => v.id === vmId);
    if (!vm) throw new UpstreamError(CloseCode.notFound, `VM ${vmId} is not configured on hypervisor ${this.name}.`);
    // One server per address: its handshakes take turns (see handshake-limiter.ts).
    return withSlot(this.limiter, vm.address, signal, async () => {
      let socket: Socket;
      try {
        socket = await dial(vm.address);
      } catch (err) {
        throw socketFailure(err as NodeJS.ErrnoException, `The console of ${vm.name ?? vm.id}`);
      }
      return awaitGreeting(socket, { signal });
    });
  }

  async check(): Promise<CheckReport> {
    const details: string[] = [];
    let ok = true;
    for (const vm of this.config.vms) {
      try {
        const socket = await dial(vm.address, AbortSignal.timeout(CONNECT_TIMEOUT_MS));
        const greeting = await new Promise<string>((resolve) => {
          socket.once("data", (d: Buffer) => resolve(d.subarray(0, 12).toString("latin1").trim()));
          setTimeout(() => resolve(""), 3000).unref();
        });
        socket.destroy();
        const rfb = /^RFB \d{3}\.\d{3}$/.test(greeting);
        if (!rfb) ok = false;
        details.push(`${vm.id} (${vm.address}): ${rfb ? `reachable, ${greeting}` : "reachable but no RFB greeting"}`);
      } catch (err) {
        ok = false;
        details.push(`${vm.id} (${vm.address}): ${socketFailure(err as NodeJS.ErrnoException, "the server").message}`);
      }
    }
    details.push(`${this.config.vms.length} VMs`);
    return { ok, details };
  }
}
