/**
 * Why a site is asked to look again at what a user may reach, and the sentence a console page
 * shows when that ends a console. Close reasons are capped at 123 bytes: long VM names are cut.
 */
import type { Reach } from "./decide.ts";

export type ReviewWhy =
  /** A grant or group membership was removed, or the group deleted. */
  | { kind: "removed"; actor: string }
  /** A grant's window closed at `at` (ms). */
  | { kind: "ended"; at: number }
  /** The role changed: the message is said as it is. */
  | { kind: "role"; message: string };

/** What the registry tells a site: the user's role and grants now, and the access version it read. */
export interface VersionedReach extends Reach {
  version: number;
}

function short(name: string): string {
  return name.length > 30 ? `${name.slice(0, 29)}…` : name;
}

/** "18:00 UTC": the page shows it as it comes, and the edge has no idea of the person's time zone. */
export function clock(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 16)} UTC`;
}

/** The reason a console closes with; `lowered`: it was full control and view-only remains. */
export function endedReason(why: ReviewWhy, vmName: string, lowered: boolean): string {
  const vm = short(vmName);
  if (why.kind === "role") return why.message;
  const tail = lowered ? ": full control ended." : ".";
  if (why.kind === "ended") return `Your access to ${vm} ended at ${clock(why.at)}${tail}`;
  return `Your access to ${vm} was ${lowered ? "lowered" : "removed"} by ${short(why.actor)}${tail}`;
}
