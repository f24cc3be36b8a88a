import { CloseCode } from "../../shared/protocol/close-codes.ts";

/** What a person reads when a console closes: the edge's reason, or a fallback for the code. */
export function describeClose(code: number, reason: string): string {
  if (reason) return reason;
  switch (code) {
    case 1000:
    case CloseCode.ended:
      return "The console session ended.";
    case 1006:
      return "The connection to Porthole was lost. Check your network and open the console again.";
    case CloseCode.connectorOffline:
      return "The site's connector is offline.";
    default:
      return `The console closed (code ${code}).`;
  }
}
