/** What the site object answers the Worker over RPC (worker/site/site-rpc.ts). */
import type { HypervisorInventory, Vm } from "../../shared/protocol/messages.ts";
import type { LiveConsole } from "../../shared/api/types.ts";
import type { JoinState } from "./link-joins.ts";
import type { LinkRefusalCode } from "./share-links.ts";

/** Why the object refused: the HTTP status and error code the API answers with, and a sentence for the person. */
export interface Refusal<S extends number = number, C extends string = string> {
  ok: false;
  status: S;
  code: C;
  message: string;
}

/** The one shape of every RPC answer that can be refused: `{ ok: true, ...value }` or a Refusal. */
export type SiteResult<T extends object = object, S extends number = number, C extends string = string> = ({ ok: true } & T) | Refusal<S, C>;

/** Who is asking, for ownership checks: by id; by name only for links made before ids existed. */
export interface Owner {
  id: string;
  name: string;
}

export type TicketResult = SiteResult<{ ticket: string; expiresAt: number; viewOnly: boolean }, 403 | 404 | 502 | 503>;

export interface ConnectorInfo {
  id: string;
  hostname: string | null;
  /** HELLO's software, e.g. porthole-connector/0.3.0. */
  version: string | null;
  /** Why it is older than the edge supports well, when it is. */
  outdated?: string;
  /** Stopping: takes no new consoles. */
  draining: boolean;
  hypervisors: { name: string; type: string; reachable: boolean; error?: string; vms: number; omitted?: number }[];
  connectedAt: string;
  lastHeardAt: string;
  streams: number;
}

export interface SiteVm extends Vm {
  hypervisor: string;
}

export interface LinkInfo {
  id: string;
  site: string;
  hypervisor: string;
  vm: string;
  viewOnly: boolean;
  createdBy: string;
  createdAt: string;
  expiresAt: string;
  state: "active" | "expired" | "revoked" | "locked";
  /** Whether it asks for a PIN, and the wrong ones tried so far (the creator sees why it locked). */
  pin: boolean;
  pinFailures: number;
  startsAt: string | null;
  maxUses: number | null;
  uses: number;
  maxViewers: number;
  note: string | null;
  /** Each viewer waits to be let in; those waiting now. */
  approval: boolean;
  waiting: { id: string; name: string; askedAt: string; expiresAt: string }[];
  /** Consoles open on the link right now. */
  sessions: number;
  watchers: string[];
}

export type LinkCreated = SiteResult<{ id: string; secret: string; expiresAt: number; pin?: string }, 403 | 404 | 502 | 503>;

export type LinkStatus = SiteResult<
  { expiresAt: number; viewOnly: boolean; vm: string; vmName: string; pin: boolean; approval: boolean },
  403 | 404 | 410,
  LinkRefusalCode
>;

/** `POST /l/:site/join`: the viewer's request, waiting (worker/site/link-joins.ts). */
export type LinkJoinAsked = SiteResult<{ id: string; token: string; expiresAt: number; vm: string }, 400 | 403 | 404 | 410 | 429, LinkRefusalCode | "no_approval" | "pin_needed" | "too_many_waiting">;

/** `GET /l/:site/join/:id`: where the request stands; once allowed, the socket's pass (once). */
export type LinkJoinLook = SiteResult<
  { state: JoinState; expiresAt: number; message: string; pass?: string; passExpiresAt?: number },
  403 | 404 | 410,
  LinkRefusalCode | "unknown_join"
>;

/** `POST /api/links/:id/joins/:join/allow|deny`. */
export type JoinAnswered = SiteResult<{ id: string; name: string; state: "allowed" | "denied" }, 403 | 404 | 409, "unknown_join" | "forbidden" | "join_settled">;

/** `POST /l/:site/pin`: the right PIN gives a pass (a single-use 60-s ticket for the link's socket). */
export type LinkPass = SiteResult<{ pass: string; expiresAt: number }, 400 | 403 | 404 | 410, "unknown_link" | "link_expired" | "link_revoked" | "link_locked" | "link_not_started" | "link_used_up" | "wrong_pin" | "no_pin">;

/** Revoking a link: 404 for a link that is not the asker's, 410 for one that already ended. */
export type LinkRevoked = SiteResult<object, 404 | 410>;

/** Ending a live console: 404 for one that is gone or not the asker's. */
export type ConsoleEnded = SiteResult<object, 404>;

export type VncUrlsResult = SiteResult<{ type: HypervisorInventory["type"]; direct?: string; proxied?: string }, 403 | 404 | 502 | 503 | 504>;

/** A live console, as GET /api/sessions lists it: the API's own type (shared/api/types.ts). */
export type SessionInfo = LiveConsole;
