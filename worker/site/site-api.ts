/** What the site object answers the Worker over RPC. */
import type { HypervisorInventory, Vm } from "../../shared/protocol/messages.ts";

export type TicketResult =
  | { ok: true; ticket: string; expiresAt: number }
  | { ok: false; status: 403 | 404 | 502 | 503; code: string; message: string };

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
  state: "active" | "expired" | "revoked";
  /** Consoles open on the link right now. */
  sessions: number;
}

export type LinkCreated =
  | { ok: true; id: string; secret: string; expiresAt: number }
  | { ok: false; status: 403 | 404 | 502 | 503; code: string; message: string };

export type LinkStatus =
  | { ok: true; expiresAt: number; viewOnly: boolean; vm: string; vmName: string }
  | { ok: false; why: "unknown" | "expired" | "revoked" };

export type VncUrlsResult =
  | { ok: true; type: HypervisorInventory["type"]; direct?: string; proxied?: string }
  | { ok: false; status: 404 | 502 | 503 | 504; code: string; message: string };

/** A live console, as GET /api/sessions lists it. */
export interface SessionInfo {
  /** `<site>.<stream>`: unique across sites. */
  id: string;
  site: string;
  hypervisor: string;
  vm: string;
  /** Who opened it (consoles from tickets), by name and stable id. */
  user?: string;
  userId?: string | null;
  /** The share link it was opened through, and who made that link. */
  linkId?: string;
  linkCreatedBy?: string;
  linkCreatedById?: string | null;
  viewOnly: boolean;
  openedAt: string;
  bytesDown: number;
  bytesUp: number;
}
