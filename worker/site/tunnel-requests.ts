/**
 * Questions the site object asks connectors outside console streams (REQUEST / REPLY frames),
 * waiting in memory for the answer: a pending request keeps the object awake, which is fine for
 * the few seconds it takes.
 */
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeJson, FrameType, ProtocolError } from "../../shared/protocol/frames.ts";
import { TunnelReply, type TunnelRequest } from "../../shared/protocol/messages.ts";
import type { ConnectorSocket } from "./connector-socket.ts";

const REQUEST_TIMEOUT_MS = 20_000;

export class TunnelRequests {
  private readonly pending = new Map<number, { connector: string; resolve: (reply: TunnelReply) => void }>();
  private next = 0;

  ask(connector: ConnectorSocket, request: TunnelRequest): Promise<TunnelReply> {
    this.next = (this.next % 0xfffffffe) + 1;
    const id = this.next;
    const reply = new Promise<TunnelReply>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, code: CloseCode.upstreamTimeout, message: "The connector did not answer in time." });
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, {
        connector: connector.id,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
    connector.queue(encodeJson(FrameType.request, id, request));
    connector.flush();
    return reply;
  }

  /** A REPLY frame from `connector`. Replies nobody waits for (timed out) are ignored. */
  answer(connector: ConnectorSocket, id: number, json: unknown): void {
    const waiting = this.pending.get(id);
    if (!waiting || waiting.connector !== connector.id) return;
    this.pending.delete(id);
    const parsed = TunnelReply.safeParse(json);
    if (!parsed.success) throw new ProtocolError("malformed REPLY");
    waiting.resolve(parsed.data);
  }

  /** The connector left: nothing it was asked will be answered. */
  connectorGone(connector: ConnectorSocket): void {
    for (const [id, waiting] of this.pending) {
      if (waiting.connector !== connector.id) continue;
      this.pending.delete(id);
      waiting.resolve({ ok: false, code: CloseCode.connectorOffline, message: "The site's connector went offline." });
    }
  }
}
