/**
 * What every hypervisor type gives the connector: an inventory, and a byte stream to one VM's
 * console. Streams are Node Duplexes so the relay treats a TCP socket, a TLS socket with the XAPI
 * header stripped, or a websockify stream alike.
 */
import type { Duplex } from "node:stream";
import type { HypervisorInventory } from "../../shared/protocol/messages.ts";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { type FinishResult, finishHandshake, HandshakeTranscript } from "./handshake-finisher.ts";

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
  /**
   * Set when the connection to the server outlives the failure: the connector is finishing its
   * handshake (handshake-finisher.ts), and the server's handshake turn stays taken until then.
   */
  finishing?: Promise<FinishResult>;

  constructor(code: number, reason: string) {
    super(reason);
    this.code = code;
  }
}

/**
 * Maps a socket error to what the person at the console page can do about it. `refused` is what
 * to suggest when `what` refuses the connection: a plain VNC server is probably not running, but
 * a XenServer host or a CloudTower has no "VNC server" the person could look for.
 */
export function socketFailure(
  err: NodeJS.ErrnoException,
  what: string,
  refused = `${what} refused the connection: is its VNC server running?`,
): UpstreamError {
  switch (err.code) {
    case "ECONNREFUSED":
      return new UpstreamError(CloseCode.upstreamFailed, refused);
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

/** How long a VNC server may take to send its 12-byte greeting once the connection is up. */
export const GREETING_TIMEOUT_MS = 15_000;

export interface GreetingOptions {
  signal: AbortSignal;
  timeoutMs?: number;
  /** What to tell the person when the stream ends before the first byte. */
  closed?: string;
}

/**
 * Resolves with `stream` (paused, the first bytes put back) once the upstream sent its first byte:
 * a server that accepts the connection and never speaks must not hold a console open forever.
 * Every upstream type waits here, so the answer is the same for all of them.
 */
export function awaitGreeting(stream: Duplex, opts: GreetingOptions): Promise<Duplex> {
  const timeoutMs = opts.timeoutMs ?? GREETING_TIMEOUT_MS;
  return new Promise<Duplex>((resolve, reject) => {
    let settled = false;
    const cleanup = () => {
      settled = true;
      clearTimeout(timer);
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("close", onEnd);
      stream.off("error", onError);
      opts.signal.removeEventListener("abort", onAbort);
    };
    const fail = (err: UpstreamError) => {
      if (settled) return;
      cleanup();
      stream.on("error", () => {});
      stream.destroy();
      reject(err);
    };
    /**
     * The person is answered, but the connection stays: closing it before the handshake would count
     * as a failed attempt on the server (see handshake-finisher.ts), so the connector finishes it
     * when the server speaks (a hung server, a viewer who left while it was waiting).
     */
    const giveUp = (err: UpstreamError) => {
      if (settled) return;
      cleanup();
      err.finishing = finishHandshake(stream, new HandshakeTranscript().snapshot());
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      if (settled) return;
      cleanup();
      stream.pause();
      stream.unshift(chunk);
      resolve(stream);
    };
    const onEnd = () =>
      fail(
        new UpstreamError(
          CloseCode.upstreamFailed,
          opts.closed ??
            // Within a close reason's 123 bytes. TigerVNC closes at once when it blacklisted the address.
            "The VNC server closed the connection without a greeting: it may be blocking the connector's address. Try again soon.",
        ),
      );
    const onError = (err: NodeJS.ErrnoException) => fail(socketFailure(err, "The VNC server"));
    const onAbort = () => giveUp(new UpstreamError(CloseCode.ended, "The console request was cancelled."));
    const timer = setTimeout(
      () =>
        giveUp(
          new UpstreamError(
            CloseCode.upstreamTimeout,
            `The VNC server accepted the connection but sent no greeting within ${Math.round(timeoutMs / 1000)} s.`,
          ),
        ),
      timeoutMs,
    );
    if (opts.signal.aborted) return onAbort();
    opts.signal.addEventListener("abort", onAbort, { once: true });
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.once("close", onEnd);
    stream.on("error", onError);
    stream.resume();
  });
}
