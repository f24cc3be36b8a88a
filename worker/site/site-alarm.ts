/**
 * The object's one alarm. It serves everything timed, and only what needs a time of its own (each
 * alarm is a billed request and wakes the object): each stream's open and handshake deadline and
 * idle timeout, each share link's expiry on the dot, a new connector's HELLO deadline, and, only
 * while a connector carries consoles, the moment it would have been silent for the heartbeat
 * timeout (its viewers must learn that it is gone). A site with only idle connectors needs none: a
 * dead one is noticed when the object next wakes (`ConnectorBook.check`). Expired tickets are
 * swept here too, as a side effect of whatever woke the object. Recordings past their retention are
 * deleted by it, in batches an hour wide (recording-book.ts). A share link's waiting viewer is
 * turned away by it when nobody answered in time (link-joins.ts).
 */
import type { ConnectorBook } from "./connector-book.ts";
import type { JoinBook } from "./link-joins.ts";
import type { RecordingBook } from "./recording-book.ts";
import type { ShareLinkBook } from "./share-links.ts";
import type { StreamBook } from "./stream-book.ts";
import type { TicketBook } from "./tickets.ts";

/** The books whose deadlines the alarm serves. */
export interface Deadlines {
  tickets: TicketBook;
  links: ShareLinkBook;
  streams: StreamBook;
  connectors: ConnectorBook;
  recordings: RecordingBook;
  joins: JoinBook;
}

export class SiteAlarm {
  private readonly storage: DurableObjectStorage;
  private readonly books: Deadlines;

  constructor(storage: DurableObjectStorage, books: Deadlines) {
    this.storage = storage;
    this.books = books;
  }

  /**
   * Sets the alarm to the earliest need, recomputed from the books: one that nothing needs any more
   * (a connector said HELLO, the last console closed) is moved or deleted, never left to fire.
   * `fromAlarm`: called by the alarm itself, which the runtime already cleared. Returns its time.
   */
  async schedule(fromAlarm = false): Promise<number | null> {
    const now = Date.now();
    const { tickets, links, streams, connectors, recordings, joins } = this.books;
    tickets.sweep();
    recordings.takeExpiryMoved();
    const times = [links.nextExpiry(), streams.nextDeadline(), connectors.nextDeadline(), recordings.nextExpiry(), joins.nextExpiry()].filter((t): t is number => t !== null);
    const next = times.length === 0 ? null : Math.max(now, Math.min(...times));
    const current = fromAlarm ? null : await this.storage.getAlarm();
    if (next === current) return next;
    if (next === null) await this.storage.deleteAlarm();
    else await this.storage.setAlarm(next);
    return next;
  }
}
