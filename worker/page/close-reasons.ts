import { CloseCode } from "../../shared/protocol/close-codes.ts";

/**
 * Closes whose cause passes (the connector, the edge or the network went away, the upstream was
 * briefly unreachable): the page reconnects. Every other code is final and the page stops.
 */
const PASSING = new Set<number>([1006, 1001, 1012, CloseCode.connectorOffline, CloseCode.upstreamFailed, CloseCode.upstreamTimeout]);

/**
 * A VM that is off is final (4412: retrying cannot start it). Connectors before 0.3 said so with
 * 4502 and words ("The VM is powered off…"), so those words are final too. XenServer's "not
 * running, or it moved to another host" is not: a migrating VM comes back, so the page keeps trying.
 */
const VM_OFF = /powered off|halted|: start it/i;

export function isPassingClose(code: number, reason = ""): boolean {
  if (code === CloseCode.upstreamFailed && VM_OFF.test(reason)) return false;
  return PASSING.has(code);
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
