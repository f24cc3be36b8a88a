/**
 * Watching now: the edge's `watching` notice (shared/protocol/limits.ts) read leniently into what
 * the console page shows: who is on this VM's console, and who just joined or left.
 */
import { VIEWER_NOTICE_WATCHING, WATCHING_MAX_PEOPLE } from "../../shared/protocol/limits.ts";

export interface WatchingView {
  people: { name: string; viewOnly: boolean }[];
  /** People beyond those named. */
  more: number;
  /** "Ana joined." / "link: for Bo left.", or null. */
  change: string | null;
}

const text = (v: unknown, max = 200): string | null => (typeof v === "string" && v.length > 0 ? v.slice(0, max) : null);

/** The notice as the page shows it, or null when `raw` is not a watching notice. */
export function watchingFrom(raw: string): WatchingView | null {
  let msg: { type?: unknown; people?: unknown; more?: unknown; joined?: unknown; left?: unknown };
  try {
    msg = JSON.parse(raw) as typeof msg;
  } catch {
    return null;
  }
  if (msg?.type !== VIEWER_NOTICE_WATCHING || !Array.isArray(msg.people)) return null;
  const people = msg.people
    .slice(0, WATCHING_MAX_PEOPLE)
    .map((p: { name?: unknown; viewOnly?: unknown }) => ({ name: text(p?.name) ?? "someone", viewOnly: p?.viewOnly === true }));
  const joined = text(msg.joined);
  const left = text(msg.left);
  return {
    people,
    more: typeof msg.more === "number" && msg.more > 0 ? Math.floor(msg.more) : 0,
    change: joined ? `${joined} joined.` : left ? `${left} left.` : null,
  };
}
