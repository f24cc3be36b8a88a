/**
 * Which connector takes a new console, and what happens when one stops answering OPEN.
 *
 * A connector whose process stopped (frozen, or its host gone while TCP stays up) still looks
 * connected until its heartbeat deadline (45 s), and new consoles would keep going to it if it
 * is the least loaded. So every OPEN has an acknowledgement deadline: OPEN_ACK within
 * OPEN_ACK_TIMEOUT_MS from connectors with the `ack` capability (sent at once, before the
 * upstream's own waits), or, from older connectors, any message within OPEN_SILENCE_MS. A
 * connector that misses it is marked suspect: it gets no new consoles while another live one can
 * take them, until a frame from it shows life; and the console is offered to such a connector,
 * with CLOSE to the first (if it wakes up, it drops the console instead of opening it twice).
 */
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { HEARTBEAT_INTERVAL_MS, OPEN_ACK_TIMEOUT_MS, OPEN_SILENCE_MS } from "../../shared/protocol/limits.ts";
import { Capability } from "../../shared/protocol/messages.ts";
import type { ViewerStream } from "../relay/viewer-stream.ts";
import type { ConnectorSocket } from "./connector-socket.ts";

/**
 * A connector heard from within this long is preferred for new consoles: one that stopped
 * answering (process stopped, TCP still up) is not picked while a live one can serve.
 */
export const FRESH_MS = HEARTBEAT_INTERVAL_MS + 5_000;

/** When `connector` must have acknowledged an OPEN sent at `now`. */
export function ackDeadline(connector: ConnectorSocket, now: number): number {
  return now + (connector.has(Capability.ack) ? OPEN_ACK_TIMEOUT_MS : OPEN_SILENCE_MS);
}

/**
 * The connector for a new console among those that serve the VM and are not draining: heard from
 * recently and not suspect, else heard from recently, else any; fewest consoles first.
 */
export function chooseConnector(serving: ConnectorSocket[], heardAt: (c: ConnectorSocket) => number, now: number): ConnectorSocket {
  const fresh = serving.filter((c) => now - heardAt(c) <= FRESH_MS);
  const trusted = fresh.filter((c) => !c.suspect);
  const pool = trusted.length > 0 ? trusted : fresh.length > 0 ? fresh : serving;
  // Spread consoles across the site's connectors.
  return [...pool].sort((a, b) => a.streams.size - b.streams.size)[0]!;
}

/** What the watch needs of the stream book (worker/site/stream-book.ts). */
export interface OpenBook {
  /** Streams whose OPEN deadline for an acknowledgement has passed. */
  unacknowledged(now: number): ViewerStream<ConnectorSocket>[];
  /** Stop watching a stream's acknowledgement (the connector showed life, or nothing better exists). */
  acknowledged(stream: ViewerStream<ConnectorSocket>): void;
  /** Moves a console nothing has flowed on yet to another connector. */
  reroute(stream: ViewerStream<ConnectorSocket>, to: ConnectorSocket, code: number, reason: string): void;
}

/** What the watch needs of the connector book (worker/site/connector-book.ts). */
export interface ConnectorWatch {
  /** The welcomed, non-draining connectors that serve a VM. */
  serving(hypervisor: string, vm: string): ConnectorSocket[];
  /** When a connector last showed life. */
  heardAt(connector: ConnectorSocket): number;
  /** It missed an OPEN's deadline: no new consoles while another live one can take them. */
  markSuspect(connector: ConnectorSocket, now: number): void;
}

/** Runs at the alarm: each OPEN past its acknowledgement deadline. Returns how many consoles moved. */
export function reofferUnacknowledged(book: OpenBook, connectors: ConnectorWatch, now: number): number {
  let moved = 0;
  const heardAt = (c: ConnectorSocket) => connectors.heardAt(c);
  for (const stream of book.unacknowledged(now)) {
    const from = stream.connector;
    const a = stream.attachment;
    // An older connector cannot acknowledge: anything from it since the OPEN shows it alive.
    if (!from.has(Capability.ack) && heardAt(from) > a.ackBy! - OPEN_SILENCE_MS) {
      book.acknowledged(stream);
      continue;
    }
    connectors.markSuspect(from, now);
    const others = connectors.serving(a.hypervisor, a.vm).filter((c) => c !== from && !c.suspect && now - heardAt(c) <= FRESH_MS);
    // Only a console on which nothing has flowed can move: the viewer's bytes went to `from`.
    if (others.length === 0 || stream.bytesDown > 0 || stream.bytesUp > 0) {
      book.acknowledged(stream); // left to the OPEN deadline, or to the heartbeat's
      continue;
    }
    book.reroute(stream, chooseConnector(others, heardAt, now), CloseCode.upstreamTimeout, "no answer to OPEN in time: the console was offered to another connector");
    moved++;
  }
  return moved;
}
