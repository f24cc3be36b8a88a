/**
 * Watching now: who is on a VM's console right now, told live to everyone on it. The list is not
 * state of its own: it is read from the stream book (the one owner of consoles) each time, so it
 * cannot drift and survives hibernation with the streams. Each change (a console opened or
 * closed) sends every credit viewer of that VM the notice
 * `{"type":"watching","people":[…],"joined"?|"left"?: label}` (docs/protocol.md); plain viewers
 * get none. A person is named by their user name; a share link's viewer as "link: <name>" when they
 * gave one to be let in, else "link: <note or id>".
 */
import { VIEWER_NOTICE_WATCHING, WATCHING_MAX_PEOPLE } from "../../shared/protocol/limits.ts";
import type { ViewerAttachment } from "../relay/viewer-stream.ts";
import type { ShareLinkBook } from "./share-links.ts";
import type { StreamBook } from "./stream-book.ts";

export interface Watcher {
  /** A user name, or `link: <note or link id>`. */
  name: string;
  viewOnly: boolean;
  /** When their console opened (ISO). */
  since: string;
}

export class Watching {
  private readonly streams: StreamBook;
  private readonly links: ShareLinkBook;

  constructor(streams: StreamBook, links: ShareLinkBook) {
    this.streams = streams;
    this.links = links;
  }

  /** How a console's viewer is named to the others. */
  label(a: Pick<ViewerAttachment, "user" | "linkId" | "viewerName">): string {
    if (!a.linkId) return a.user;
    // The name a viewer gave when let in says more than the link's note.
    if (a.viewerName) return `link: ${a.viewerName}`;
    const link = this.links.byId(a.linkId);
    return `link: ${link?.note ?? a.linkId}`;
  }

  /** Who is on `vm`'s console now, oldest first. */
  of(hypervisor: string, vm: string): Watcher[] {
    return this.streams
      .where((a) => a.hypervisor === hypervisor && a.vm === vm)
      .map((s) => s.attachment)
      .sort((x, y) => x.openedAt - y.openedAt)
      .map((a) => ({ name: this.label(a), viewOnly: a.viewOnly, since: new Date(a.openedAt).toISOString() }));
  }

  /** A console of `vm` opened or closed: everyone still on it hears who is there now. */
  changed(hypervisor: string, vm: string, change: { joined: string } | { left: string }): void {
    const everyone = this.of(hypervisor, vm);
    // Bounded: a notice names at most WATCHING_MAX_PEOPLE (and says how many more).
    const people = everyone.slice(0, WATCHING_MAX_PEOPLE);
    const notice = { type: VIEWER_NOTICE_WATCHING, people, more: everyone.length - people.length, ...change };
    for (const s of this.streams.where((a) => a.hypervisor === hypervisor && a.vm === vm)) s.notify(notice);
  }
}
