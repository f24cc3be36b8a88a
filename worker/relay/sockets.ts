/** Small WebSocket helpers for the site object. */
import { clampReason } from "../../shared/protocol/close-codes.ts";

/** Accepts the upgrade only to close it at once with a reason the page can show. */
export function refuseUpgrade(code: number, reason: string, headers?: HeadersInit): Response {
  const pair = new WebSocketPair();
  pair[1].accept();
  pair[1].close(code, clampReason(reason));
  return new Response(null, { status: 101, webSocket: pair[0], headers });
}

export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, clampReason(reason));
  } catch {
    // Already closed.
  }
}

/**
 * Whether a kind of socket may use permessage-deflate, from an edge var ("on" / "off") or the
 * default. Console streams are mostly compressed already (Tight, ZRLE, JPEG): deflating them again
 * costs the edge more than ten times the CPU per byte (billed) and latency, to save about 15 % of a
 * text console's bytes (docs/deploy.md, docs/benchmarks.md).
 */
export function compressionWanted(value: string | undefined, fallback: boolean): boolean {
  const v = value?.trim().toLowerCase();
  return v === "on" ? true : v === "off" ? false : fallback;
}

/**
 * A Sec-WebSocket-Extensions value that offers no extension. workerd's HTTP code treats an empty
 * header as absent, so refusing takes a non-empty value that is not a permessage-deflate offer.
 * It never reaches the client: the runtime writes the header of the 101 from what it agreed
 * (nothing), not from the Worker's value.
 */
export const NO_EXTENSIONS = "none";

/**
 * Headers for a 101 response that decide permessage-deflate for that socket alone. workerd (with
 * the compatibility flag `web_socket_compression`, on for every date since 2023-08-15) accepts the
 * client's offer as it stands when the response has no Sec-WebSocket-Extensions header (it copies
 * the request's); with one, it negotiates between that value and the client's offer, so a value
 * that offers nothing refuses compression.
 */
export function compressionHeaders(compress: boolean): Record<string, string> {
  return compress ? {} : { "Sec-WebSocket-Extensions": NO_EXTENSIONS };
}
