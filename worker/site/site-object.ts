/**
 * One Durable Object per site. It holds the site's connector sockets and every viewer socket of
 * the site's consoles, and pairs each viewer socket with a stream on a connector. Sockets use the
 * hibernation API: an idle site costs nothing, and all in-memory state is rebuilt from socket
 * attachments and SQLite when the object wakes. Streams are owned by `StreamBook`; this class
 * routes events and answers the Worker's RPC.
 */
import { DurableObject } from "cloudflare:workers";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import {
  BINARY_SUBPROTOCOL,
  CREDIT_SUBPROTOCOL,
  HEARTBEAT_REPLY,
  HEARTBEAT_REQUEST,
} from "../../shared/protocol/limits.ts";
import { Capability } from "../../shared/protocol/messages.ts";
import { bearerToken, randomToken, secretsEqual, sha256Hex } from "../auth/secrets.ts";
import type { Env } from "../env.ts";
import { registryOf } from "../registry/registry-object.ts";
import type { AuditEvent } from "../registry/audit-store.ts";
import type { ViewerStream } from "../relay/viewer-stream.ts";
import type { ConnectorSocketAttachment, ConnectorSocket } from "./connector-socket.ts";
import { ConnectorBook, type ConnectorGone } from "./connector-book.ts";
import { ShareLinkBook, linkState } from "./share-links.ts";
import type {
  ConnectorInfo,
  LinkCreated,
  LinkInfo,
  LinkStatus,
  SessionInfo,
  SiteVm,
  TicketResult,
  VncUrlsResult,
} from "./site-api.ts";
import { closeQuietly, compressionHeaders, compressionWanted, refuseUpgrade } from "../relay/sockets.ts";
import { type LostConsole, StreamBook, type StreamEnd } from "./stream-book.ts";
import { TicketBook, type ConsoleGrant } from "./tickets.ts";
import { TunnelRequests } from "./tunnel-requests.ts";
import { TunnelMessages } from "./tunnel-messages.ts";
import { reofferUnacknowledged } from "./open-watch.ts";
import { migrate, SITE_MIGRATIONS } from "../storage/migrations.ts";

type Admission =
  | { ok: true; hypervisor: string; vm: string; user: string; userId?: string; viewOnly: boolean; linkId?: string }
  | { ok: false; code: number; reason: string };

/** Who is asking, for ownership checks: by id; by name only for links made before ids existed. */
export interface Owner {
  id: string;
  name: string;
}

function owns(owner: Owner, createdById: string | null, createdBy: string): boolean {
  return createdById === null ? createdBy === owner.name : createdById === owner.id;
}

function limit(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

export class SiteObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly tickets: TicketBook;
  private readonly links: ShareLinkBook;
  private readonly connectors: ConnectorBook;
  private readonly streams: StreamBook;
  private readonly requests = new TunnelRequests();
  private readonly tunnel: TunnelMessages;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    migrate(ctx.storage, SITE_MIGRATIONS);
    this.tickets = new TicketBook(this.sql);
    this.links = new ShareLinkBook(this.sql);
    this.connectors = new ConnectorBook(ctx, (gone) => this.connectorGone(gone));
    const idle = limit(env.IDLE_TIMEOUT_SECONDS, 0);
    this.streams = new StreamBook(ctx, idle > 0 ? idle * 1000 : null, (end) => this.auditClosed(end));
    this.tunnel = new TunnelMessages({
      connectors: this.connectors,
      streams: this.streams,
      requests: this.requests,
      audit: (event) => this.audit(event),
      site: () => this.getConfig("site") ?? "",
    });
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_REQUEST, HEARTBEAT_REPLY));
    this.restore();
  }

  // ---- RPC from the Worker -------------------------------------------------------------------

  initialize(site: string, tokenHash: string): void {
    this.setConfig("site", site);
    this.setConfig("token_hash", tokenHash);
  }

  describe(): ConnectorInfo[] {
    this.connectors.check();
    return this.connectors
      .welcomed()
      .map((c) => ({
        id: c.id,
        hostname: c.attachment.hostname ?? null,
        version: c.attachment.software ?? null,
        ...(c.attachment.outdated ? { outdated: c.attachment.outdated } : {}),
        draining: c.attachment.draining === true,
        hypervisors: c.inventory.map((h) => ({
          name: h.name,
          type: h.type,
          reachable: h.reachable,
          ...(h.error ? { error: h.error } : {}),
          vms: h.vms.length,
          ...(h.omitted ? { omitted: h.omitted } : {}),
        })),
        connectedAt: new Date(c.attachment.connectedAt).toISOString(),
        lastHeardAt: new Date(this.connectors.heardAt(c)).toISOString(),
        streams: c.streams.size,
      }));
  }

  listVms(): SiteVm[] {
    this.connectors.check();
    return this.connectors.vms();
  }

  async createTicket(grant: ConsoleGrant): Promise<TicketResult> {
    if (!this.tickets.allowed(grant.userId, grant.viewOnly)) return this.accessTakenAway();
    const found = this.findConnector(grant.hypervisor, grant.vm);
    if (!found.ok) return found;
    const { ticket, expiresAt } = await this.tickets.issue(grant);
    await this.scheduleAlarm();
    return { ok: true, ticket, expiresAt };
  }
  // ---- share links -------------------------------------------------------------------------------

  async createLink(req: { hypervisor: string; vm: string; viewOnly: boolean; ttlMs: number; user: string; userId?: string }): Promise<LinkCreated> {
    if (!this.tickets.allowed(req.userId, false)) return this.accessTakenAway();
    const found = this.findConnector(req.hypervisor, req.vm);
    if (!found.ok) return found;
    const expiresAt = Date.now() + req.ttlMs;
    const { id, secret } = await this.links.create({
      hypervisor: req.hypervisor,
      vm: req.vm,
      viewOnly: req.viewOnly,
      createdBy: req.user,
      createdById: req.userId ?? null,
      expiresAt,
    });
    this.audit({
      type: "link.created",
      actor: req.user,
      detail: { id, hypervisor: req.hypervisor, vm: req.vm, viewOnly: req.viewOnly, expiresAt: new Date(expiresAt).toISOString() },
    });
    await this.scheduleAlarm();
    return { ok: true, id, secret, expiresAt };
  }

  listLinks(): LinkInfo[] {
    const site = this.getConfig("site") ?? "";
    return this.links.list().map((l) => ({
      id: l.id,
      site,
      hypervisor: l.hypervisor,
      vm: l.vm,
      viewOnly: l.viewOnly,
      createdBy: l.createdBy,
      createdAt: new Date(l.createdAt).toISOString(),
      expiresAt: new Date(l.expiresAt).toISOString(),
      state: linkState(l),
      sessions: this.linkSessions(l.id).length,
    }));
  }

  /** Revokes a link and closes its live consoles at once (ownership is checked by revokeLinkOf). */
  private revokeLink(id: string, actor: string): { ok: true } | { ok: false; status: 404 | 410 } {
    const link = this.links.byId(id);
    if (!link) return { ok: false, status: 404 };
    if (linkState(link) !== "active") return { ok: false, status: 410 };
    this.links.revoke(id);
    const closed = this.closeLinkSessions(id, "This share link was revoked.");
    this.audit({ type: "link.revoked", actor, detail: { id, hypervisor: link.hypervisor, vm: link.vm, sessionsClosed: closed } });
    this.flushAll();
    return { ok: true };
  }

  async linkStatus(secret: string): Promise<LinkStatus> {
    const link = await this.links.bySecret(secret);
    if (!link) return { ok: false, why: "unknown" };
    const state = linkState(link);
    if (state !== "active") return { ok: false, why: state };
    const vmName = this.listVms().find((v) => v.hypervisor === link.hypervisor && v.id === link.vm)?.name ?? link.vm;
    return { ok: true, expiresAt: link.expiresAt, viewOnly: link.viewOnly, vm: link.vm, vmName };
  }

  // ---- live consoles (GET / DELETE /api/sessions) -------------------------------------------------

  listSessions(): SessionInfo[] {
    const site = this.getConfig("site") ?? "";
    return this.streams.all().map((s) => {
      const a = s.attachment;
      const link = a.linkId ? this.links.byId(a.linkId) : null;
      return {
        id: `${site}.${a.stream}`,
        site,
        hypervisor: a.hypervisor,
        vm: a.vm,
        ...(link ? { linkId: link.id, linkCreatedBy: link.createdBy, linkCreatedById: link.createdById ?? null } : { user: a.user, userId: a.userId ?? null }),
        viewOnly: a.viewOnly,
        openedAt: new Date(a.openedAt).toISOString(),
        bytesDown: s.bytesDown,
        bytesUp: s.bytesUp,
      };
    });
  }

  /**
   * Ends a live console; its page shows who ended it. `owner` (null for an admin) may end only
   * their own consoles and those opened through their links.
   */
  endSession(stream: number, actor: string, owner: Owner | null): boolean {
    const found = this.streams.get(stream);
    if (!found) return false;
    const a = found.attachment;
    const link = a.linkId ? this.links.byId(a.linkId) : null;
    const allowed = link ? owns(owner ?? { id: "", name: "" }, link.createdById ?? null, link.createdBy) : a.userId !== undefined && a.userId === owner?.id;
    if (owner !== null && !allowed) return false;
    this.streams.close(found, CloseCode.terminated, `This console was ended by ${actor}.`);
    this.flushAll();
    return true;
  }

  /**
   * The seed's LAN URLs for a VM. Only the connector holds hypervisor credentials, so it fetches
   * the VNC information; the object just asks and waits.
   */
  async vncUrls(hypervisor: string, vm: string): Promise<VncUrlsResult> {
    const found = this.findConnector(hypervisor, vm);
    if (!found.ok) return found;
    const type = found.connector.inventory.find((h) => h.name === hypervisor)!.type;
    if (type !== "cloudtower") return { ok: true, type };
    // Older connectors drop the whole tunnel on a frame type they do not know.
    if (!found.connector.has(Capability.request)) {
      return { ok: false, status: 502, code: "connector_outdated", message: "The site's connector is too old to answer this: update it." };
    }
    const answer = await this.requests.ask(found.connector, { method: "vncUrls", hypervisor, vm });
    if (answer.ok) return { ok: true, type, ...answer.result };
    const status = answer.code === CloseCode.notFound ? 404 : answer.code === CloseCode.upstreamTimeout ? 504 : answer.code === CloseCode.connectorOffline ? 503 : 502;
    return { ok: false, status, code: status === 404 ? "unknown_vm" : "upstream_failed", message: answer.message };
  }

  // ---- WebSocket upgrades (forwarded by the Worker) ------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/connect") return this.acceptConnector(request);
    if (url.pathname.startsWith("/ws/console/") || url.pathname.startsWith("/ws/link/")) return this.acceptViewer(request, url);
    return new Response("not found", { status: 404 });
  }

  private async acceptConnector(request: Request): Promise<Response> {
    const presented = bearerToken(request.headers.get("Authorization")) ?? "";
    const stored = this.getConfig("token_hash");
    if (!stored || !(await secretsEqual(await sha256Hex(presented), stored))) {
      return Response.json(
        { error: { code: "invalid_connector_token", message: "The connector token is not valid for this site." } },
        { status: 401 },
      );
    }
    const pair = new WebSocketPair();
    this.connectors.accept(pair[1], {
      kind: "connector",
      id: randomToken(6),
      connectedAt: Date.now(),
      protocol: null,
      address: request.headers.get("CF-Connecting-IP"),
    } satisfies ConnectorSocketAttachment);
    await this.scheduleAlarm();
    return new Response(null, { status: 101, webSocket: pair[0], headers: compressionHeaders(compressionWanted(this.env.CONNECTOR_WS_COMPRESSION, false)) });
  }

  private async acceptViewer(request: Request, url: URL): Promise<Response> {
    const offered = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
    // Our page returns credit; websockify's convention `binary` (many RFB clients still offer it)
    // is plain RFB, like offering nothing. A browser fails the upgrade if none of its offers is chosen.
    const subprotocol = offered.includes(CREDIT_SUBPROTOCOL) ? CREDIT_SUBPROTOCOL : offered.includes(BINARY_SUBPROTOCOL) ? BINARY_SUBPROTOCOL : null;
    const headers = {
      ...(subprotocol ? { "Sec-WebSocket-Protocol": subprotocol } : {}),
      ...compressionHeaders(compressionWanted(this.env.VIEWER_WS_COMPRESSION, false)),
    };

    const admission = url.pathname.startsWith("/ws/link/")
      ? await this.redeemLink(url.searchParams.get("link") ?? "")
      : await this.redeemTicket(url.searchParams.get("ticket") ?? "");
    if (!admission.ok) return refuseUpgrade(admission.code, admission.reason, headers);
    const { hypervisor, vm, user, userId, viewOnly, linkId } = admission;
    const busy = this.overLimit(user, linkId);
    if (busy) return refuseUpgrade(CloseCode.tooMuchInput, busy, headers);
    const found = this.findConnector(hypervisor, vm);
    if (!found.ok) {
      const code = found.status === 404 ? CloseCode.notFound : found.status === 502 ? CloseCode.upstreamFailed : CloseCode.connectorOffline;
      return refuseUpgrade(code, found.message, headers);
    }
    const connector = found.connector;
    const { client, stream } = this.streams.open({
      connector,
      hypervisor,
      vm,
      user,
      ...(userId ? { userId } : {}),
      viewOnly,
      mode: subprotocol === CREDIT_SUBPROTOCOL ? "credit" : "plain",
      subprotocol,
      ...(linkId ? { linkId } : {}),
    });
    connector.flush();
    this.audit({
      type: "console.opened",
      actor: user,
      detail: { stream: stream.id, hypervisor, vm, viewOnly, via: linkId ? "link" : "ticket", ...(linkId ? { link: linkId } : {}) },
    });
    await this.scheduleAlarm();
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  /** Why another console may not open for this user or link, or null. */
  private overLimit(user: string, linkId: string | undefined): string | null {
    if (linkId) {
      const max = limit(this.env.MAX_CONSOLES_PER_LINK, 10);
      if (this.streams.where((a) => a.linkId === linkId).length >= max) {
        return `This share link already has ${max} consoles open (the most allowed): close one first.`;
      }
      return null;
    }
    const max = limit(this.env.MAX_CONSOLES_PER_USER, 20);
    if (this.streams.where((a) => a.user === user && !a.linkId).length >= max) {
      return `You already have ${max} consoles open on this site (the most allowed): close one first.`;
    }
    return null;
  }

  private async redeemTicket(ticket: string): Promise<Admission> {
    const check = await this.tickets.redeem(ticket);
    if (check.ok) return { ok: true, ...check.grant };
    const reasons: Record<typeof check.why, [number, string]> = {
      unknown: [CloseCode.unauthorized, "Unknown console ticket: ask for a new console."],
      used: [CloseCode.gone, "This console ticket was already used: ask for a new console."],
      expired: [CloseCode.gone, "This console ticket expired (tickets last 60 s): ask for a new console."],
    };
    const [code, reason] = reasons[check.why];
    return { ok: false, code, reason };
  }

  private async redeemLink(secret: string): Promise<Admission> {
    const link = await this.links.bySecret(secret);
    if (!link) return { ok: false, code: CloseCode.unauthorized, reason: "Unknown share link." };
    const state = linkState(link);
    if (state !== "active") return { ok: false, code: CloseCode.gone, reason: `This share link ${state === "revoked" ? "was revoked" : "expired"}.` };
    return { ok: true, hypervisor: link.hypervisor, vm: link.vm, user: `link:${link.id}`, viewOnly: link.viewOnly, linkId: link.id };
  }

  // ---- Hibernatable WebSocket events ---------------------------------------------------------

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const connector = this.connectors.forSocket(ws);
    // A message proves its sender alive; the others are checked now and then, while awake anyway.
    if (connector) this.connectors.heard(connector, Date.now());
    this.connectors.checkIfDue();
    if (connector && this.connectors.has(connector)) {
      const deadlineMet = this.tunnel.receive(connector, message);
      this.connectors.flushAll();
      if (deadlineMet) await this.scheduleAlarm();
      return;
    }
    const stream = this.streams.forSocket(ws);
    if (!stream) return;
    const rearm = this.streams.fromViewer(stream, message);
    stream.connector.flush();
    if (rearm) await this.scheduleAlarm();
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.onSocketGone(ws, code, reason);
    // The last console on a connector closed: its heartbeat deadline needs no alarm any more.
    await this.scheduleAlarm();
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.onSocketGone(ws, CloseCode.internal, "socket error");
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    for (const link of this.links.expiredUnnoted(now)) {
      const closed = this.closeLinkSessions(link.id, "This share link expired.");
      this.links.noteExpiry(link.id);
      this.audit({ type: "link.expired", actor: "system", detail: { id: link.id, hypervisor: link.hypervisor, vm: link.vm, sessionsClosed: closed } });
    }
    const connectors = this.connectors.size;
    this.connectors.check(now);
    reofferUnacknowledged(this.streams, this.connectors, now);
    this.streams.overdue(now);
    this.flushAll();
    const next = await this.scheduleAlarm(true);
    // One line per alarm: each is a billed request and a wake (the benchmark counts them).
    console.log(
      JSON.stringify({
        event: "site.alarm",
        connectors,
        dropped: connectors - this.connectors.size,
        consoles: this.streams.size,
        next: next === null ? null : new Date(next).toISOString(),
      }),
    );
  }

  // ---- Teardown ------------------------------------------------------------------------------

  private onSocketGone(ws: WebSocket, code: number, reason: string): void {
    const connector = this.connectors.forSocket(ws);
    if (connector) {
      this.connectors.drop(connector, CloseCode.connectorOffline, `the site's connector disconnected (${code} ${reason})`);
      return;
    }
    this.streams.socketGone(ws, code, reason)?.connector.flush();
  }

  private auditClosed({ stream, code, reason }: StreamEnd): void {
    const a = stream.attachment;
    this.audit({
      type: "console.closed",
      actor: a.user,
      detail: {
        stream: a.stream,
        hypervisor: a.hypervisor,
        vm: a.vm,
        viewOnly: a.viewOnly,
        bytesDown: stream.bytesDown,
        bytesUp: stream.bytesUp,
        seconds: Math.round((Date.now() - a.openedAt) / 1000),
        code,
        reason,
      },
    });
  }

  private auditLost(lost: LostConsole): void {
    this.audit({
      type: "console.closed",
      actor: lost.user,
      detail: {
        stream: lost.stream,
        hypervisor: lost.hypervisor,
        vm: lost.vm,
        viewOnly: lost.viewOnly,
        seconds: Math.round((Date.now() - lost.openedAt) / 1000),
        code: CloseCode.connectorOffline,
        reason: lost.reason ?? "The edge restarted.",
      },
    });
  }

  /** Closes every console opened through a link; returns how many. */
  private closeLinkSessions(linkId: string, reason: string): number {
    return this.streams.closeWhere((a) => a.linkId === linkId, CloseCode.gone, reason);
  }

  private linkSessions(linkId: string): ViewerStream<ConnectorSocket>[] {
    return this.streams.where((a) => a.linkId === linkId);
  }

  /** Audit rows go to the registry without holding up this object's events. */
  private audit(event: AuditEvent): void {
    const site = this.getConfig("site") ?? undefined;
    this.ctx.waitUntil(
      registryOf(this.env)
        .audit({ ...event, site })
        .catch((err: unknown) => console.error("audit write failed", err)),
    );
  }

  /** A connector left the book: what it carried ends. */
  private connectorGone({ connector, code, reason, welcomed }: ConnectorGone): void {
    if (welcomed) this.audit({ type: "connector.gone", actor: `connector:${connector.id}`, detail: { code, reason } });
    this.requests.connectorGone(connector);
    this.streams.closeWhere(
      (a) => a.connectorId === connector.id,
      CloseCode.connectorOffline,
      "The site's connector went offline: try again in a moment.",
    );
  }

  // ---- State -----------------------------------------------------------------------------------

  private findConnector(hypervisor: string, vm: string) {
    return this.connectors.find(hypervisor, vm, this.getConfig("site") ?? "this site");
  }

  /** Rebuilds the in-memory maps from the sockets that survived hibernation. */
  private restore(): void {
    this.connectors.restore();
    for (const lost of this.streams.restore((id) => this.connectors.get(id))) this.auditLost(lost);
    // CLOSE for consoles that could not be rebuilt: no event may follow to flush it.
    this.flushAll();
    // A wake with live sockets: worth a line for whoever runs `wrangler tail` (and the idle test).
    if (this.connectors.size > 0 || this.streams.size > 0) {
      console.log(JSON.stringify({ event: "site.woke", connectors: this.connectors.size, consoles: this.streams.size }));
    }
  }

  private flushAll(): void {
    this.connectors.flushAll();
  }

  /**
   * One alarm serves everything timed, and only what needs a time of its own (each alarm is a
   * billed request and wakes the object): each stream's open and handshake deadline and idle
   * timeout, each share link's expiry on the dot, a new connector's HELLO deadline, and, only
   * while a connector carries consoles, the moment it would have been silent for the heartbeat
   * timeout (its viewers must learn that it is gone). A site with only idle connectors needs
   * none: a dead one is noticed when the object next wakes (`checkConnectors`). Expired tickets
   * are swept here too, as a side effect of whatever woke the object. Returns the alarm's time.
   */
  private async scheduleAlarm(fromAlarm = false): Promise<number | null> {
    const now = Date.now();
    this.tickets.sweep();
    const candidates = [this.links.nextExpiry(), this.streams.nextDeadline(), this.connectors.nextDeadline()];
    const times = candidates.filter((t): t is number => t !== null);
    const next = times.length === 0 ? null : Math.max(now, Math.min(...times));
    // The alarm is always the earliest need, recomputed from state: one that nothing needs any
    // more (a connector said HELLO, the last console closed) is moved or deleted, never left to fire.
    const current = fromAlarm ? null : await this.ctx.storage.getAlarm();
    if (next === current) return next;
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next);
    return next;
  }

  private getConfig(key: string): string | null {
    return this.sql.exec<{ value: string }>("SELECT value FROM config WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  private setConfig(key: string, value: string): void {
    this.sql.exec("INSERT OR REPLACE INTO config (key, value) VALUES (?, ?)", key, value);
  }

  // ---- access control (issue 10) ----

  /**
   * A user's access was taken away (registry → every site). "all" (deleted, disabled): their
   * consoles close with `reason`, their unredeemed tickets are dropped and their share links are
   * revoked with the links' live viewers closed. "control" (now a viewer): only full-control
   * consoles and tickets end, and their links (viewers do not share); view-only consoles stay.
   */
  endUserAccess(userId: string, scope: "all" | "control", reason: string): { consoles: number; tickets: number; links: number } {
    this.tickets.block(userId, scope);
    const tickets = this.tickets.dropForUser(userId, scope === "control");
    const consoles = this.streams.closeWhere((a) => a.userId === userId && (scope === "all" || !a.viewOnly), CloseCode.gone, reason);
    const revoked = this.links.revokeByCreator(userId);
    for (const link of revoked) {
      const closed = this.closeLinkSessions(link.id, "This share link was revoked: its creator's access was removed.");
      this.audit({ type: "link.revoked", actor: "system", detail: { id: link.id, hypervisor: link.hypervisor, vm: link.vm, sessionsClosed: closed, why: reason } });
    }
    if (consoles || tickets || revoked.length) {
      this.audit({ type: "access.ended", actor: "system", detail: { userId, scope, consoles, tickets, links: revoked.length } });
    }
    this.flushAll();
    return { consoles, tickets, links: revoked.length };
  }

  private accessTakenAway(): { ok: false; status: 403; code: string; message: string } {
    return { ok: false, status: 403, code: "access_removed", message: "Your access was removed." };
  }

  /** The user may have consoles again (re-enabled, or promoted from viewer). */
  restoreUserAccess(userId: string): void {
    this.tickets.unblock(userId);
  }

  /** Share links with their creator's id, for ownership checks by id. `owner` null: all. */
  linksOf(owner: Owner | null): (LinkInfo & { createdById: string | null })[] {
    return this.listLinks()
      .map((l) => ({ ...l, createdById: this.links.byId(l.id)?.createdById ?? null }))
      .filter((l) => owner === null || owns(owner, l.createdById, l.createdBy));
  }

  /** Revokes a link if `owner` created it (null: an admin, any link). */
  revokeLinkOf(id: string, actor: string, owner: Owner | null): { ok: true } | { ok: false; status: 404 | 410 } {
    const link = this.links.byId(id);
    if (!link || (owner !== null && !owns(owner, link.createdById ?? null, link.createdBy))) return { ok: false, status: 404 };
    return this.revokeLink(id, actor);
  }

  /** Connectors with what an operator needs to spot an impostor: host, version, address, time. */
  describeConnectors(): (ConnectorInfo & { address: string | null })[] {
    return this.describe().map((info) => ({ ...info, address: this.connectors.get(info.id)?.attachment.address ?? null }));
  }

  /** A new connector token: every connector that joined with the old one is dropped. */
  rotateConnectorToken(tokenHash: string, actor: string): number {
    this.setConfig("token_hash", tokenHash);
    const dropped = this.connectors.all();
    for (const connector of dropped) this.connectors.drop(connector, CloseCode.unauthorized, "The site's connector token was rotated.");
    this.flushAll();
    this.audit({ type: "site.token_rotated", actor, detail: { connectorsDropped: dropped.length } });
    return dropped.length;
  }

  /** The site is deleted: every socket closes, then the object forgets everything it stored. */
  async destroy(actor: string): Promise<void> {
    this.audit({ type: "site.deleted", actor, detail: { connectors: this.connectors.size, consoles: this.streams.size } });
    this.streams.closeWhere(() => true, CloseCode.gone, "This site was deleted.");
    for (const connector of this.connectors.all()) this.connectors.drop(connector, CloseCode.unauthorized, "This site was deleted.");
    for (const ws of this.ctx.getWebSockets()) closeQuietly(ws, CloseCode.gone, "This site was deleted.");
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    // The object may live on in memory and be asked to initialize the name again: recreate the schema.
    migrate(this.ctx.storage, SITE_MIGRATIONS);
  }
}
