/**
 * Close codes for browser sockets and OPEN_ERROR / CLOSE frames. 4000 + the nearest HTTP status,
 * so a person (and the console page) can read them at a glance.
 */
export const CloseCode = {
  /** The console ended normally (the upstream closed). */
  ended: 4000,
  badRequest: 4400,
  /** Ticket or link credential missing or unknown. */
  unauthorized: 4401,
  forbidden: 4403,
  /** The connector does not know that hypervisor or VM. */
  notFound: 4404,
  /** The client stopped reading or sent more than its window. */
  tooSlow: 4408,
  /** A person ended the console (End session); the reason names them. */
  terminated: 4409,
  /** No input for the edge's idle timeout (IDLE_TIMEOUT_SECONDS); final: the page does not reconnect. */
  idle: 4440,
  /**
   * The VM is not running (powered off, halted, paused, suspended): final until someone starts it,
   * so the console page stops instead of retrying. (Connectors before 0.3 said so with 4502.)
   */
  vmNotRunning: 4412,
  /** Ticket already used or expired, link expired or revoked. */
  gone: 4410,
  /** The connector speaks no protocol version the edge speaks. */
  upgradeRequired: 4426,
  tooMuchInput: 4429,
  internal: 4500,
  /** The upstream refused, was unreachable, or failed its own handshake. */
  upstreamFailed: 4502,
  /** No connector online for the site, or the connector went away. */
  connectorOffline: 4503,
  upstreamTimeout: 4504,
  /** WebSocket's own protocol-error code: a malformed or oversized tunnel frame. */
  protocolError: 1002,
  /** The connector shut down gracefully (SIGTERM). */
  goingAway: 1001,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/** Cuts a reason to the 123 bytes a WebSocket close frame allows, without splitting a character. */
export function clampReason(reason: string, maxBytes = 123): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= maxBytes) return reason;
  let cut = maxBytes - 3;
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return new TextDecoder().decode(bytes.subarray(0, cut)) + "...";
}
