/**
 * What all plain viewers of one site object hold unproven, together: console bytes the edge sent
 * them that no fence echo has shown processed. workerd's server WebSocket has no backpressure and
 * no `bufferedAmount`: every byte sent to a viewer that does not read stays in the runtime's
 * outgoing queue, in the object's 128 MB, and `close()` is queued behind it (web-socket.c++:
 * the Close goes into the same ordered queue as the messages). No API aborts one server-side
 * WebSocket's TCP connection; only the client, or its TCP connection ending, frees that queue.
 *
 * So the ledger counts two kinds of bytes against PLAIN_UNPROVEN_SITE_LIMIT_BYTES:
 *  - `live`: unproven bytes of the plain viewers still relayed (kept by their ViewerStreams);
 *  - `lingering`: what a plain viewer held when the edge closed it, until its socket reports
 *    close or error (the client answered the close frame, or its connection ended). These
 *    survive hibernation in the socket's attachment (`cut`), so a wake cannot forget them.
 * A plain viewer whose next message would take the total over the limit is closed instead
 * (4408): the check comes before the send, so the total never exceeds the limit.
 */
import { PLAIN_UNPROVEN_SITE_LIMIT_BYTES } from "../../shared/protocol/limits.ts";

export class UnprovenLedger {
  private live = 0;
  private readonly lingering = new Map<WebSocket, number>();
  private lingeringBytes = 0;
  readonly limit: number;

  constructor(limit = PLAIN_UNPROVEN_SITE_LIMIT_BYTES) {
    this.limit = limit;
  }

  /** Everything counted: live viewers' unproven bytes and closed viewers' not yet released. */
  get total(): number {
    return this.live + this.lingeringBytes;
  }

  /** Closed plain viewers whose sockets have not gone yet, and what they held. */
  get lingeringSockets(): number {
    return this.lingering.size;
  }

  /** Whether `bytes` more may be sent to a plain viewer. */
  admits(bytes: number): boolean {
    return this.total + bytes <= this.limit;
  }

  /** A live plain viewer's unproven bytes changed by `delta` (sent: +, proven: −). */
  adjust(delta: number): void {
    this.live += delta;
  }

  /** A plain viewer the edge closed while it held `bytes` unproven: counted until its socket goes. */
  linger(ws: WebSocket, bytes: number): void {
    if (bytes <= 0 || this.lingering.has(ws)) return;
    this.lingering.set(ws, bytes);
    this.lingeringBytes += bytes;
  }

  /** The socket reported close or error: the runtime has let go of what it queued for it. */
  released(ws: WebSocket): void {
    const bytes = this.lingering.get(ws);
    if (bytes === undefined) return;
    this.lingering.delete(ws);
    this.lingeringBytes -= bytes;
  }
}
