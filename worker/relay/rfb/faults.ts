/** How the tracker gives up on a stream. */
import { CloseCode } from "../../../shared/protocol/close-codes.ts";
import { StreamFault } from "../stream-fault.ts";

/**
 * Signals "cannot frame": thrown by any step, caught by the parse loops (parser.ts), which turn it
 * into a fault (view-only) or framing = lost (everything else).
 */
export class Unframeable extends Error {}

export function viewOnlyFault(what: string): StreamFault {
  return new StreamFault(CloseCode.badRequest, `View-only console closed: ${what}.`);
}

/** The viewer chose a security type the server did not offer (or chose before any offer). */
export function notOffered(type: number, listed: boolean): StreamFault {
  return new StreamFault(
    CloseCode.badRequest,
    listed ? `Console closed: the viewer chose security type ${type}, which the VNC server did not offer.` : "Console closed: the viewer chose a security type before the VNC server offered any.",
  );
}

/** A snapshot that is not one of ours (damaged in storage, or from code that writes another shape). */
export function badState(): StreamFault {
  return new StreamFault(CloseCode.internal, "The console was interrupted: open it again.");
}
