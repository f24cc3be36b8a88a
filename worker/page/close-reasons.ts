import { ApiFailure } from "../../shared/api/client.ts";
import { CloseCode } from "../../shared/protocol/close-codes.ts";

/**
 * Closes whose cause is final: retrying cannot help, or a person decided (revoked, ended by an
 * admin, access ended, link expired, idle, VM off, refused). Every other close is retried with the
 * countdown, so a console whose VNC server restarted (4000, "The console ended.") or briefly
 * refused (a blacklist after failed logins lasts seconds) comes back by itself; a retry that meets
 * a final cause (the VM is off now: 4412) stops there.
 */
const FINAL = new Set<number>([
  1000,
  CloseCode.protocolError,
  CloseCode.badRequest,
  CloseCode.unauthorized,
  CloseCode.forbidden,
  CloseCode.notFound,
  CloseCode.terminated,
  CloseCode.idle,
  CloseCode.vmNotRunning,
  CloseCode.gone,
  CloseCode.upgradeRequired,
]);

/**
 * A VM that is off is final (4412: retrying cannot start it). Connectors before 0.3 said so with
 * 4502 and words ("The VM is powered off…"), so those words are final too. XenServer's "not
 * running, or it moved to another host" is not: a migrating VM comes back, so the page keeps trying.
 */
const VM_OFF = /powered off|halted|: start it/i;

/** A VNC server's temporary refusal (TigerVNC's blacklist after failed logins, "try again later"). */
const TEMPORARY_REFUSAL = /too many (security|authentication) failures|blacklist|try again later/i;

export function isPassingClose(code: number, reason = ""): boolean {
  if (code === CloseCode.upstreamFailed && VM_OFF.test(reason)) return false;
  if (code === CloseCode.forbidden && TEMPORARY_REFUSAL.test(reason)) return true;
  return !FINAL.has(code);
}

/** Backoff between reconnect attempts: 1 s doubling to 30 s, so a long outage costs the edge little. */
export const RECONNECT_FIRST_MS = 1000;
export const RECONNECT_MAX_MS = 30_000;
/**
 * The backoff starts over only after a console stayed up this long: a server that accepts and
 * drops every console at once (it crashes on each one) is retried ever more slowly, not every second.
 */
export const RECONNECT_STABLE_MS = 30_000;

export function reconnectDelay(attempt: number): number {
  return Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** attempt);
}

/**
 * Why a request to the edge failed, in words. A fetch that cannot reach the edge rejects with a
 * TypeError whose text is the browser's ("Failed to fetch", "NetworkError when attempting…"); the
 * shared client (shared/api/client.ts) turns it into an ApiFailure of status 0.
 */
export function describeFetchError(err: unknown): string {
  if ((err instanceof ApiFailure && err.status === 0) || err instanceof TypeError || !(err instanceof Error) || !err.message) {
    return "Cannot reach Porthole: the network or Porthole's edge is down.";
  }
  return err.message;
}

/** What a person reads when a console closes: the edge's reason, or a fallback for the code. */
export function describeClose(code: number, reason: string): string {
  if (reason) return reason;
  switch (code) {
    case 1000:
    case CloseCode.ended:
      return "The console session ended.";
    case 1001:
    case 1012:
      return "Porthole's edge restarted (an update or a restart).";
    case 1006:
      // The browser cannot tell an edge restart from a network drop: say both, blame neither.
      return "The connection to Porthole was lost: the edge restarted or the network dropped.";
    case CloseCode.connectorOffline:
      return "The site's connector is offline.";
    case CloseCode.idle:
      return "This console closed after a while without input.";
    case CloseCode.gone:
      return "This console's ticket or link is no longer valid.";
    case CloseCode.terminated:
      return "This console was ended by someone.";
    case CloseCode.vmNotRunning:
      return "The VM is not running: start it, then open its console again.";
    default:
      return `The console closed (code ${code}).`;
  }
}

/**
 * Why one console socket closed, from the two places that know: the socket's close event and
 * noVNC's security failure. noVNC closes the socket itself after a security failure (code 1000 or
 * 1006 on the page's side), which must not hide the server's reason: the failure wins.
 */
export class CloseRecord {
  code = 1006;
  reason = "";
  text: string | null = null;

  socketClosed(code: number, reason: string): void {
    if (this.code === CloseCode.forbidden && this.text) return; // noVNC's own close after a security failure
    this.code = code;
    this.reason = reason;
    this.text = describeClose(code, reason);
  }

  securityFailure(reason: string | undefined): void {
    this.code = CloseCode.forbidden;
    this.reason = reason ?? "";
    this.text = `The console refused the connection: ${reason ?? "security failure"}.`;
  }
}
