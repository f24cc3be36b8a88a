/** The app's side of the edge's HTTP API: JSON in and out, errors as sentences a person can act on. */

/** An API call that did not succeed: `message` is the edge's own sentence when it sent one. */
export class ApiFailure extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Called when the edge says the session is gone (401) outside sign-in, so the app can ask again. */
let onSignedOut: ((why: string) => void) | null = null;
export function whenSignedOut(handler: (why: string) => void): void {
  onSignedOut = handler;
}

/** The whole response, for the calls that need headers (the audit's `Link: rel="next"`). */
export async function apiResponse<T>(method: string, path: string, body?: unknown): Promise<{ body: T; headers: Headers }> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiFailure(0, "network", "Porthole's edge could not be reached: check the network and try again.");
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const message = typeof error?.message === "string" ? error.message : `The edge answered ${res.status} ${res.statusText}.`;
    const failure = new ApiFailure(res.status, typeof error?.code === "string" ? error.code : "http_" + res.status, message);
    if (res.status === 401 && path !== "/api/session") onSignedOut?.(message);
    throw failure;
  }
  return { body: json as T, headers: res.headers };
}

export async function api<T = void>(method: string, path: string, body?: unknown): Promise<T> {
  return (await apiResponse<T>(method, path, body)).body;
}

/** A person's words for any thrown thing. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export const seg = encodeURIComponent;

export type Role = "admin" | "operator" | "viewer";

export interface Me {
  user: string;
  role: Role;
  via?: "session" | "token" | "access";
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
