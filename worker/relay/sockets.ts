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
