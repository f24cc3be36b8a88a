/**
 * What every hypervisor type gives the connector: an inventory, and a byte stream to one VM's
 * console. Streams are Node Duplexes so the relay treats a TCP socket, a TLS socket with the XAPI
 * header stripped, or a websockify stream alike.
 */
import type { Duplex } from "node:stream";
import type { HypervisorInventory } from "../../shared/protocol/messages.ts";
import { CloseCode } from "../../shared/protocol/close-codes.ts";

export interface Upstream {
  readonly name: string;
  readonly type: HypervisorInventory["type"];
  /** The current inventory; `onChange` fires when it changes (periodic refreshes, events). */
  inventory(): HypervisorInventory;
  onChange(listener: () => void): void;
  /** Starts background work (sign-in, inventory refresh). */
  start(): Promise<void>;
  /** Opens the console of `vm`; rejects with an UpstreamError a person can act on. */
  openConsole(vm: string, signal: AbortSignal): Promise<Duplex>;
  /** CloudTower only: the seed's direct and tower-proxied noVNC URLs for people on the LAN. */
  lanUrls?(vm: string): Promise<{ direct: string; proxied: string }>;
  /** For `--check`: reach the hypervisor and say what was found. */
  check(): Promise<CheckReport>;
  stop(): Promise<void>;
}

export interface CheckReport {
  ok: boolean;
  /** Lines such as "reachable", "TLS verified (SHA-256 AB:CD:…)", "signed in", "12 VMs". */
  details: string[];
}

/** A console that could not be opened, with the close code and a reason for the person. */
export class UpstreamError extends Error {
  readonly code: number;

  constructor(code: number, reason: string) {
    super(reason);
    this.code = code;
  }
}

/** Maps a socket error to what the person at the console page can do about it. */
export function socketFailure(err: NodeJS.ErrnoException, what: string): UpstreamError {
  switch (err.code) {
    case "ECONNREFUSED":
      return new UpstreamError(CloseCode.upstreamFailed, `${what} refused the connection: is its VNC server running?`);
    case "ETIMEDOUT":
    case "ABORT_ERR":
      return new UpstreamError(CloseCode.upstreamTimeout, `${what} did not answer in time.`);
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new UpstreamError(CloseCode.upstreamFailed, `${what} is unreachable from the connector.`);
    default:
      return new UpstreamError(CloseCode.upstreamFailed, `${what} failed: ${err.code ?? err.message}.`);
  }
}
