/**
 * Viewers waiting to join through a share link that asks first, as the console page of someone in
 * control shows them: the edge's `join_request` and `join_answered` notices (shared/protocol/
 * limits.ts) read leniently into a list with **Allow** and **Deny** for each.
 */
import { VIEWER_NOTICE_JOIN_ANSWERED, VIEWER_NOTICE_JOIN_REQUEST } from "../../shared/protocol/limits.ts";

export interface JoinRequestView {
  id: string;
  /** The share link's id (the answer's route names it). */
  link: string;
  /** "Ana wants to watch web-1 (view only)". */
  text: string;
  /** Why the last answer did not go through, if it did not. */
  problem: string | null;
}

/** At most this many are shown: the edge keeps five per link waiting, and a VM has few links. */
const SHOWN_MAX = 20;

const text = (v: unknown, max = 200): string | null => (typeof v === "string" && v.length > 0 ? v.slice(0, max) : null);

/** The list after `raw`, or null when `raw` is not a join notice (the list is then unchanged). */
export function joinsAfter(list: JoinRequestView[], raw: string): JoinRequestView[] | null {
  let msg: { type?: unknown; id?: unknown; link?: unknown; name?: unknown; vm?: unknown; viewOnly?: unknown };
  try {
    msg = JSON.parse(raw) as typeof msg;
  } catch {
    return null;
  }
  const id = text(msg?.id, 64);
  if (!id) return null;
  if (msg.type === VIEWER_NOTICE_JOIN_ANSWERED) return list.filter((r) => r.id !== id);
  if (msg.type !== VIEWER_NOTICE_JOIN_REQUEST) return null;
  const link = text(msg.link, 64);
  if (!link || list.some((r) => r.id === id)) return list;
  const who = text(msg.name, 60) ?? "Someone";
  const vm = text(msg.vm) ?? "this VM";
  const request = { id, link, text: `${who} wants to watch ${vm} (${msg.viewOnly === false ? "with control" : "view only"})`, problem: null };
  return [...list, request].slice(-SHOWN_MAX);
}
