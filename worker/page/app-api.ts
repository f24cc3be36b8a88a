/** The app's side of the edge's HTTP API: JSON in and out, errors as sentences a person can act on. */

import { ApiFailure, apiClient } from "../../shared/api/client.ts";

export { ApiFailure };
export type { Me, Role } from "../../shared/api/types.ts";

/** Called when the edge says the sign-in is gone (401) outside sign-in, so the app can ask again. */
let onSignedOut: ((why: string) => void) | null = null;
export function whenSignedOut(handler: (why: string) => void): void {
  onSignedOut = handler;
}

const client = apiClient({
  init: () => ({ cache: "no-store" }),
  onFailure: (failure, route) => {
    if (failure.status === 401 && !route.endsWith(" /api/session")) onSignedOut?.(failure.message);
  },
});

/** A typed call (`api("GET /api/sites/:site/vms", { params: { site } })`): its reply, or an ApiFailure. */
export const api = client.call;
/** The whole answer, for the calls that need headers (the audit's `Link: rel="next"`). */
export const apiAnswer = client.answer;

/** A person's words for any thrown thing. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

/** "12 Mar 2026, 14:05", or the time alone when it is today. */
export function when(iso: string | undefined | null): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toDateString() === new Date().toDateString() ? timeOnly.format(d) : dateTime.format(d);
}

/** "3 min ago", "2 h ago": how long something has been going. */
export function since(iso: string | undefined | null, now = Date.now()): string {
  if (!iso) return "—";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}
