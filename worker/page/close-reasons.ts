import { CloseCode } from "../../shared/protocol/close-codes.ts";

/** What a person reads when a console closes: the edge's reason, or a fallback for the code. */
export function describeClose(code: number, reason: string): string {
  if (reason) return reason;
  switch (code) {
    case 1000:
    case CloseCode.ended:
      return "The console session ended.";
    case 1001:
    case 1012:
      return "Porthole's edge restarted (an update or a restart): open the console again.";
    case 1006:
      // The browser cannot tell an edge restart from a network drop: say both, blame neither.
      return "The connection to Porthole was lost: the edge restarted or the network dropped. Open the console again.";
    case CloseCode.connectorOffline:
      return "The site's connector is offline.";
    default:
      return `The console closed (code ${code}).`;
  }
}
