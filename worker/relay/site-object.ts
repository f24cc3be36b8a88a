/**
 * One Durable Object per site. It holds the site's connector sockets and every browser socket of
 * the site's consoles, and pairs each browser socket with a stream on a connector. Sockets use the
 * hibernation API: an idle site costs nothing, and all in-memory state is rebuilt from socket
 * attachments and SQLite when the object wakes.
 */
import { DurableObject } from "cloudflare:workers";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import {
  type Frame,
  FrameType,
  ProtocolError,
  decodeMessage,
  encodeClose,
  encodeJson,
} from "../../shared/protocol/frames.ts";
import {
  CREDIT_SUBPROTOCOL,
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_REPLY,
  HEARTBEAT_REQUEST,
  HEARTBEAT_TIMEOUT_MS,
  MAX_MESSAGE_BYTES,
} from "../../shared/protocol/limits.ts";
import { type HypervisorInventory, Inventory } from "../../shared/protocol/messages.ts";
import { randomToken, secretsEqual, sha256Hex } from "../auth/secrets.ts";
import type { Env } from "../env.ts";
import { registryOf } from "../registry/registry-object.ts";
import type { AuditEvent } from "../registry/audit-store.ts";
import { type BrowserAttachment, BrowserStream } from "./browser-stream.ts";
import { type ConnectorAttachment, ConnectorLink } from "./connector-link.ts";
import { negotiate, welcomeFrame } from "./handshake.ts";
import { LinkBook, linkState } from "./links.ts";
import { StreamFault } from "./stream-fault.ts";
import type {
  ConnectorInfo,
  LinkCreated,
  LinkInfo,
  LinkStatus,
  SiteVm,
  TicketResult,
  VncUrlsResult,
} from "./site-api.ts";
import { coalesceData } from "./coalesce.ts";
import { closeQuietly, refuse } from "./sockets.ts";
import { TicketBook, type TicketGrant } from "./tickets.ts";
import { TunnelRequests } from "./tunnel-requests.ts";

type Attachment = ConnectorAttachment | BrowserAttachment;

type Grant =
  | { ok: true; hypervisor: string; vm: string; user: string; userId?: string; viewOnly: boolean; linkId?: string }
  | { ok: false; code: number; reason: string };


export class SiteObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly tickets: TicketBook;
  private readonly links: LinkBook;
  private readonly connectors = new Map<string, ConnectorLink>();
  private readonly streams = new Map<number, BrowserStream>();
  /** Hot-path lookup from a socket to what it is; rebuilt after hibernation. */
  private readonly bySocket = new Map<WebSocket, ConnectorLink | BrowserStream>();
  private nextStream = (Math.random() * 0x7fffffff) >>> 0;
  private readonly requests = new TunnelRequests();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS inventory (connector_id TEXT PRIMARY KEY, json TEXT NOT NULL);
    `);
    this.tickets = new TicketBook(this.sql);
    this.links = new LinkBook(this.sql);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_REQUEST, HEARTBEAT_REPLY));
    this.restore();
  }

  // ---- RPC from the Worker -------------------------------------------------------------------

  initialize(site: string, tokenHash: string): void {
    this.setConfig("site", site);
    this.setConfig("token_hash", tokenHash);
  }

  describe(): ConnectorInfo[] {
    return [...this.connectors.values()]
      .filter((c) => c.attachment.protocol !== null)
      .map((c) => ({
        id: c.id,
        hostname: c.attachment.hostname ?? null,
        hypervisors: c.inventory.map((h) => ({
          name: h.name,
          type: h.type,
          reachable: h.reachable,
          ...(h.error ? { error: h.error } : {}),
          vms: h.vms.length,
        })),
        connectedAt: new Date(c.attachment.connectedAt).toISOString(),
        streams: c.streams.size,
      }));
  }

  listVms(): SiteVm[] {
    const seen = new Set<string>();
    const out: SiteVm[] = [];
    for (const c of this.connectors.values()) {
      for (const h of c.inventory) {
        for (const vm of h.vms) {
          const key = `${h.name}\u0000${vm.id}`;
          if (seen.has(key)) continue;
          seen.add(key);
          out.push({ hypervisor: h.name, ...vm });
        }
      }
    }
    return out;
  }

  async createTicket(grant: TicketGrant): Promise<TicketResult> {
    if (!this.tickets.allowed(grant.userId, grant.viewOnly)) return this.accessTakenAway();
    const found = this.findConnector(grant.hypervisor, grant.vm);
    if (!found.ok) return { ok: false, ...found.error };
    const { ticket, expiresAt } = await this.tickets.issue(grant);
    await this.scheduleAlarm();
    return { ok: true, ticket, expiresAt };
  }

  // ---- share links -------------------------------------------------------------------------------

  async createLink(req: { hypervisor: string; vm: string; viewOnly: boolean; ttlMs: number; user: string; userId?: string }): Promise<LinkCreated> {
    if (!this.tickets.allowed(req.userId, false)) return this.accessTakenAway();
    const found = this.findConnector(req.hypervisor, req.vm);
    if (!found.ok) return { ok: false, ...found.error };
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

  /** Revokes a link and closes its live consoles at once. `owner` limits it to that creator's links. */
  revokeLink(id: string, actor: string, owner: string | null): { ok: true } | { ok: false; status: 404 | 410 } {
    const link = this.links.byId(id);
    if (!link || (owner !== null && link.createdBy !== owner)) return { ok: false, status: 404 };
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

  /**
   * The seed's LAN URLs for a VM. Only the connector holds hypervisor credentials, so it fetches
   * the VNC information; the object just asks and waits.
   */
  async vncUrls(hypervisor: string, vm: string): Promise<VncUrlsResult> {
    const found = this.findConnector(hypervisor, vm);
    if (!found.ok) return { ok: false, ...found.error };
    const type = found.connector.inventory.find((h) => h.name === hypervisor)!.type;
    if (type !== "cloudtower") return { ok: true, type };
    const answer = await this.requests.ask(found.connector, { method: "vncUrls", hypervisor, vm });
    if (answer.ok) return { ok: true, type, ...answer.result };
    const status = answer.code === CloseCode.notFound ? 404 : answer.code === CloseCode.upstreamTimeout ? 504 : answer.code === CloseCode.connectorOffline ? 503 : 502;
    return { ok: false, status, code: status === 404 ? "unknown_vm" : "upstream_failed", message: answer.message };
  }

  // ---- WebSocket upgrades (forwarded by the Worker) ------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/connect") return this.acceptConnector(request);
    if (url.pathname.startsWith("/ws/console/") || url.pathname.startsWith("/ws/link/")) return this.acceptBrowser(request, url);
    return new Response("not found", { status: 404 });
  }

  private async acceptConnector(request: Request): Promise<Response> {
    const presented = request.headers.get("Authorization")?.match(/^Bearer (\S+)$/)?.[1] ?? "";
    const stored = this.getConfig("token_hash");
    if (!stored || !(await secretsEqual(await sha256Hex(presented), stored))) {
      return Response.json(
        { error: { code: "invalid_connector_token", message: "The connector token is not valid for this site." } },
        { status: 401 },
      );
    }
    const pair = new WebSocketPair();
    const attachment: ConnectorAttachment = {
      kind: "connector",
      id: randomToken(6),
      connectedAt: Date.now(),
      protocol: null,
      address: request.headers.get("CF-Connecting-IP"),
    };
    this.ctx.acceptWebSocket(pair[1], ["connector"]);
    pair[1].serializeAttachment(attachment);
    const link = new ConnectorLink(pair[1], attachment);
    this.connectors.set(link.id, link);
    this.bySocket.set(pair[1], link);
    await this.scheduleAlarm();
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  private async acceptBrowser(request: Request, url: URL): Promise<Response> {
    const offered = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim());
    const creditMode = offered.includes(CREDIT_SUBPROTOCOL);
    const headers = creditMode ? { "Sec-WebSocket-Protocol": CREDIT_SUBPROTOCOL } : undefined;

    const grant = url.pathname.startsWith("/ws/link/")
      ? await this.redeemLink(url.searchParams.get("link") ?? "")
      : await this.redeemTicket(url.searchParams.get("ticket") ?? "");
    if (!grant.ok) return refuse(grant.code, grant.reason, headers);
    const { hypervisor, vm, user, userId, viewOnly, linkId } = grant;
    const found = this.findConnector(hypervisor, vm);
    if (!found.ok) {
      const code = found.error.status === 404 ? CloseCode.notFound : CloseCode.connectorOffline;
      return refuse(code, found.error.message, headers);
    }
    const connector = found.connector;
    const pair = new WebSocketPair();
    const attachment: BrowserAttachment = {
      kind: "browser",
      stream: this.allocateStream(),
      connectorId: connector.id,
      hypervisor,
      vm,
      user,
      ...(userId ? { userId } : {}),
      creditMode,
      openedAt: Date.now(),
      viewOnly,
      ...(linkId ? { linkId } : {}),
    };
    this.ctx.acceptWebSocket(pair[1], ["browser"]);
    pair[1].serializeAttachment(attachment);
    const stream = new BrowserStream(pair[1], attachment, connector);
    this.addStream(stream);
    connector.queue(encodeJson(FrameType.open, stream.id, { hypervisor, vm }));
    connector.flush();
    this.audit({
      type: "console.opened",
      actor: user,
      detail: { stream: stream.id, hypervisor, vm, viewOnly, via: linkId ? "link" : "ticket", ...(linkId ? { link: linkId } : {}) },
    });
    return new Response(null, { status: 101, webSocket: pair[0], headers });
  }

  private async redeemTicket(ticket: string): Promise<Grant> {
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

  private async redeemLink(secret: string): Promise<Grant> {
    const link = await this.links.bySecret(secret);
    if (!link) return { ok: false, code: CloseCode.unauthorized, reason: "Unknown share link." };
    const state = linkState(link);
    if (state !== "active") return { ok: false, code: CloseCode.gone, reason: `This share link ${state === "revoked" ? "was revoked" : "expired"}.` };
    return { ok: true, hypervisor: link.hypervisor, vm: link.vm, user: `link:${link.id}`, viewOnly: link.viewOnly, linkId: link.id };
  }

  // ---- Hibernatable WebSocket events ---------------------------------------------------------

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const peer = this.lookup(ws);
    if (!peer) return;
    if (peer instanceof ConnectorLink) {
      this.onConnectorMessage(peer, message);
      this.flushAll();
      return;
    }
    try {
      if (typeof message === "string") peer.grant(message);
      else peer.up(new Uint8Array(message));
    } catch (err) {
      if (!(err instanceof StreamFault)) throw err;
      this.endStream(peer, err.code, err.message, true);
    }
    peer.connector.flush();
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.onSocketGone(ws, code, reason);
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
    for (const link of [...this.connectors.values()]) {
      const lastHeard = Math.max(
        link.attachment.connectedAt,
        this.ctx.getWebSocketAutoResponseTimestamp(link.ws)?.getTime() ?? 0,
        this.lastMessageAt.get(link.id) ?? 0,
      );
      if (now - lastHeard > HEARTBEAT_TIMEOUT_MS) {
        this.dropConnector(link, CloseCode.tooSlow, "no heartbeat from the connector");
      } else if (link.attachment.protocol === null && now - link.attachment.connectedAt > HEARTBEAT_TIMEOUT_MS) {
        this.dropConnector(link, CloseCode.protocolError, "no HELLO from the connector");
      }
    }
    this.flushAll();
    await this.scheduleAlarm(true);
  }

  // ---- Connector frames ----------------------------------------------------------------------

  /** When each connector last sent a frame (a busy tunnel is alive even between heartbeats). */
  private readonly lastMessageAt = new Map<string, number>();

  private onConnectorMessage(link: ConnectorLink, message: string | ArrayBuffer): void {
    this.lastMessageAt.set(link.id, Date.now());
    if (typeof message === "string") {
      // The runtime answers heartbeats itself; reaching here means a heartbeat it did not match.
      if (message === HEARTBEAT_REQUEST) return link.ws.send(HEARTBEAT_REPLY);
      return this.dropConnector(link, CloseCode.protocolError, "text messages are not part of the tunnel protocol");
    }
    if (message.byteLength > MAX_MESSAGE_BYTES) {
      return this.dropConnector(link, CloseCode.protocolError, `message of ${message.byteLength} bytes is too large`);
    }
    let frames: Frame[];
    try {
      frames = decodeMessage(new Uint8Array(message));
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return this.dropConnector(link, CloseCode.protocolError, `protocol error: ${err.message}`);
    }
    for (const frame of coalesceData(frames)) {
      if (!this.connectors.has(link.id)) return;
      try {
        this.onConnectorFrame(link, frame);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        return this.dropConnector(link, CloseCode.protocolError, `protocol error: ${err.message}`);
      }
    }
  }

  private onConnectorFrame(link: ConnectorLink, frame: Frame): void {
    if (link.attachment.protocol === null) {
      if (frame.type !== FrameType.hello) throw new ProtocolError("the first frame must be HELLO");
      return this.onHello(link, frame.json);
    }
    switch (frame.type) {
      case FrameType.inventory: {
        const parsed = Inventory.safeParse(frame.json);
        if (!parsed.success) throw new ProtocolError(`bad INVENTORY: ${parsed.error.issues[0]?.message}`);
        return this.setInventory(link, parsed.data.hypervisors);
      }
      case FrameType.data: {
        const stream = this.streams.get(frame.stream);
        // A stream the browser just closed: its CLOSE is already on the way to the connector.
        if (!stream || stream.connector !== link) return;
        try {
          stream.down(frame.bytes);
        } catch (err) {
          if (!(err instanceof StreamFault)) throw err;
          this.endStream(stream, err.code, err.message, true);
        }
        return;
      }
      case FrameType.credit: {
        const stream = this.streams.get(frame.stream);
        if (stream && stream.connector === link) stream.credit(frame.bytes);
        return;
      }
      case FrameType.openOk:
        return;
      case FrameType.reply:
        return this.requests.answer(link, frame.stream, frame.json);
      case FrameType.openError:
      case FrameType.close: {
        const stream = this.streams.get(frame.stream);
        if (!stream || stream.connector !== link) return;
        const code = frame.code >= 4000 && frame.code <= 4999 ? frame.code : CloseCode.upstreamFailed;
        this.endStream(stream, code, frame.reason, false);
        return;
      }
      default:
        throw new ProtocolError(`frame type 0x${frame.type.toString(16)} is not sent by connectors`);
    }
  }

  private onHello(link: ConnectorLink, json: unknown): void {
    const hello = negotiate(json);
    if (!hello.ok) return this.dropConnector(link, CloseCode.upgradeRequired, hello.reason);
    link.attachment = { ...link.attachment, protocol: hello.protocol, hostname: hello.hello.hostname, software: hello.hello.software };
    link.ws.serializeAttachment(link.attachment);
    this.setInventory(link, hello.hello.hypervisors);
    this.audit({
      type: "connector.connected",
      actor: `connector:${link.id}`,
      detail: { hostname: hello.hello.hostname ?? null, software: hello.hello.software, address: link.attachment.address ?? null, hypervisors: hello.hello.hypervisors.map((h) => h.name) },
    });
    link.queue(welcomeFrame(hello.protocol, link.id, this.getConfig("site") ?? ""));
  }

  private setInventory(link: ConnectorLink, hypervisors: HypervisorInventory[]): void {
    link.inventory = hypervisors;
    this.sql.exec(
      "INSERT OR REPLACE INTO inventory (connector_id, json) VALUES (?, ?)",
      link.id,
      JSON.stringify(hypervisors),
    );
  }

  // ---- Teardown ------------------------------------------------------------------------------

  private onSocketGone(ws: WebSocket, code: number, reason: string): void {
    const peer = this.lookup(ws);
    this.bySocket.delete(ws);
    if (!peer) return;
    if (peer instanceof ConnectorLink) {
      this.dropConnector(peer, CloseCode.connectorOffline, `the site's connector disconnected (${code} ${reason})`);
    } else {
      this.streams.delete(peer.id);
      peer.connector.streams.delete(peer.id);
      peer.connector.queue(encodeClose(FrameType.close, peer.id, 1000, "viewer closed the console"));
      peer.connector.flush();
      this.auditClosed(peer, code, reason || "viewer closed the console");
    }
  }

  /** Closes a browser socket and forgets its stream; tells the connector unless it ended it. */
  private endStream(stream: BrowserStream, code: number, reason: string, tellConnector: boolean): void {
    this.streams.delete(stream.id);
    this.bySocket.delete(stream.browser);
    stream.connector.streams.delete(stream.id);
    if (tellConnector) stream.connector.queue(encodeClose(FrameType.close, stream.id, code, reason));
    closeQuietly(stream.browser, code, reason);
    this.auditClosed(stream, code, reason);
  }

  private auditClosed(stream: BrowserStream, code: number, reason: string): void {
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

  /** Closes every console opened through a link; returns how many. */
  private closeLinkSessions(linkId: string, reason: string): number {
    const sessions = this.linkSessions(linkId);
    for (const stream of sessions) this.endStream(stream, CloseCode.gone, reason, true);
    return sessions.length;
  }

  private linkSessions(linkId: string): BrowserStream[] {
    return [...this.streams.values()].filter((s) => s.attachment.linkId === linkId);
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

  private dropConnector(link: ConnectorLink, code: number, reason: string): void {
    if (this.connectors.get(link.id) === link && link.attachment.protocol !== null) {
      this.audit({ type: "connector.gone", actor: `connector:${link.id}`, detail: { code, reason } });
    }
    this.connectors.delete(link.id);
    this.requests.connectorGone(link);
    this.lastMessageAt.delete(link.id);
    this.bySocket.delete(link.ws);
    this.sql.exec("DELETE FROM inventory WHERE connector_id = ?", link.id);
    for (const id of link.streams) {
      const stream = this.streams.get(id);
      if (stream) this.endStream(stream, CloseCode.connectorOffline, "The site's connector went offline: try again in a moment.", false);
    }
    closeQuietly(link.ws, code, reason);
  }

  // ---- State -----------------------------------------------------------------------------------

  private findConnector(
    hypervisor: string,
    vm: string,
  ): { ok: true; connector: ConnectorLink } | { ok: false; error: { status: 404 | 503; code: string; message: string } } {
    const site = this.getConfig("site") ?? "this site";
    const live = [...this.connectors.values()].filter((c) => c.attachment.protocol !== null);
    if (live.length === 0) {
      return {
        ok: false,
        error: { status: 503, code: "connector_offline", message: `No connector of site ${site} is online.` },
      };
    }
    const offering = live.filter((c) => c.offers(hypervisor, vm) === "yes");
    if (offering.length === 0) {
      const knowsHypervisor = live.some((c) => c.offers(hypervisor, vm) !== "no-hypervisor");
      const message = knowsHypervisor
        ? `VM ${vm} is not in hypervisor ${hypervisor}'s inventory.`
        : `No connector of site ${site} serves a hypervisor named ${hypervisor}.`;
      return { ok: false, error: { status: 404, code: knowsHypervisor ? "unknown_vm" : "unknown_hypervisor", message } };
    }
    // Spread consoles across the site's connectors.
    offering.sort((a, b) => a.streams.size - b.streams.size);
    return { ok: true, connector: offering[0]! };
  }

  private allocateStream(): number {
    do {
      this.nextStream = (this.nextStream + 1) >>> 0;
    } while (this.nextStream === 0 || this.streams.has(this.nextStream));
    return this.nextStream;
  }

  private addStream(stream: BrowserStream): void {
    this.streams.set(stream.id, stream);
    this.bySocket.set(stream.browser, stream);
    stream.connector.streams.add(stream.id);
  }

  private lookup(ws: WebSocket): ConnectorLink | BrowserStream | undefined {
    return this.bySocket.get(ws);
  }

  /** Rebuilds the in-memory maps from the sockets that survived hibernation. */
  private restore(): void {
    const inventories = new Map(
      this.sql
        .exec<{ connector_id: string; json: string }>("SELECT connector_id, json FROM inventory")
        .toArray()
        .map((r) => [r.connector_id, JSON.parse(r.json) as HypervisorInventory[]]),
    );
    const sockets = this.ctx.getWebSockets();
    for (const ws of sockets) {
      const att = ws.deserializeAttachment() as Attachment | null;
      if (att?.kind !== "connector") continue;
      const link = new ConnectorLink(ws, att);
      link.inventory = inventories.get(att.id) ?? [];
      this.connectors.set(att.id, link);
      this.bySocket.set(ws, link);
    }
    // Inventory of connectors that left while the object was not running.
    for (const id of inventories.keys()) {
      if (!this.connectors.has(id)) this.sql.exec("DELETE FROM inventory WHERE connector_id = ?", id);
    }
    for (const ws of sockets) {
      const att = ws.deserializeAttachment() as Attachment | null;
      if (att?.kind !== "browser") continue;
      const link = this.connectors.get(att.connectorId);
      if (!link) {
        closeQuietly(ws, CloseCode.connectorOffline, "The site's connector went offline: try again in a moment.");
        continue;
      }
      try {
        this.addStream(new BrowserStream(ws, att, link, true));
      } catch (err) {
        if (!(err instanceof StreamFault)) throw err;
        closeQuietly(ws, err.code, err.message);
      }
    }
  }

  private flushAll(): void {
    for (const link of this.connectors.values()) link.flush();
  }

  /**
   * One alarm serves everything timed: connector heartbeat checks and ticket sweeps every
   * interval while there is anything to watch, and each share link's expiry on the dot.
   */
  private async scheduleAlarm(fromAlarm = false): Promise<void> {
    const now = Date.now();
    const watching = this.connectors.size > 0 || this.tickets.sweep() > 0;
    const candidates = [watching ? now + HEARTBEAT_INTERVAL_MS : null, this.links.nextExpiry()].filter((t): t is number => t !== null);
    if (candidates.length === 0) return;
    const next = Math.max(now, Math.min(...candidates));
    const current = fromAlarm ? null : await this.ctx.storage.getAlarm();
    if (current === null || next < current) await this.ctx.storage.setAlarm(next);
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
    const streams = [...this.streams.values()].filter((st) => st.attachment.userId === userId && (scope === "all" || !st.attachment.viewOnly));
    for (const stream of streams) this.endStream(stream, CloseCode.gone, reason, true);
    const revoked = this.links.revokeByCreator(userId);
    for (const link of revoked) {
      const closed = this.closeLinkSessions(link.id, "This share link was revoked: its creator's access was removed.");
      this.audit({ type: "link.revoked", actor: "system", detail: { id: link.id, hypervisor: link.hypervisor, vm: link.vm, sessionsClosed: closed, why: reason } });
    }
    if (streams.length || tickets || revoked.length) {
      this.audit({ type: "access.ended", actor: "system", detail: { userId, scope, consoles: streams.length, tickets, links: revoked.length } });
    }
    this.flushAll();
    return { consoles: streams.length, tickets, links: revoked.length };
  }

  private accessTakenAway(): { ok: false; status: 403; code: string; message: string } {
    return { ok: false, status: 403, code: "access_removed", message: "Your access was removed." };
  }

  /** The user may have consoles again (re-enabled, or promoted from viewer). */
  restoreUserAccess(userId: string): void {
    this.tickets.unblock(userId);
  }

  /** Share links with their creator's id, for ownership checks by id. `ownerId` null: all. */
  linksOf(ownerId: string | null): (LinkInfo & { createdById: string | null })[] {
    return this.listLinks()
      .map((l) => ({ ...l, createdById: this.links.byId(l.id)?.createdById ?? null }))
      .filter((l) => ownerId === null || l.createdById === ownerId);
  }

  /** Revokes a link if `ownerId` created it (null: an admin, any link). */
  revokeLinkOf(id: string, actor: string, ownerId: string | null): { ok: true } | { ok: false; status: 404 | 410 } {
    const link = this.links.byId(id);
    if (!link || (ownerId !== null && link.createdById !== ownerId)) return { ok: false, status: 404 };
    return this.revokeLink(id, actor, null);
  }

  /** Connectors with what an operator needs to spot an impostor: host, version, address, time. */
  describeConnectors(): (ConnectorInfo & { version: string | null; address: string | null })[] {
    return this.describe().map((info) => {
      const a = this.connectors.get(info.id)?.attachment;
      return { ...info, version: a?.software ?? null, address: a?.address ?? null };
    });
  }

  /** A new connector token: every connector that joined with the old one is dropped. */
  rotateConnectorToken(tokenHash: string, actor: string): number {
    this.setConfig("token_hash", tokenHash);
    const dropped = [...this.connectors.values()];
    for (const link of dropped) this.dropConnector(link, CloseCode.unauthorized, "The site's connector token was rotated.");
    this.flushAll();
    this.audit({ type: "site.token_rotated", actor, detail: { connectorsDropped: dropped.length } });
    return dropped.length;
  }

  /** The site is deleted: every socket closes, then the object forgets everything it stored. */
  async destroy(actor: string): Promise<void> {
    this.audit({ type: "site.deleted", actor, detail: { connectors: this.connectors.size, consoles: this.streams.size } });
    for (const stream of [...this.streams.values()]) this.endStream(stream, CloseCode.gone, "This site was deleted.", true);
    for (const link of [...this.connectors.values()]) this.dropConnector(link, CloseCode.unauthorized, "This site was deleted.");
    for (const ws of this.ctx.getWebSockets()) closeQuietly(ws, CloseCode.gone, "This site was deleted.");
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    // The object may live on in memory and be asked to initialize the name again: recreate the schema.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS inventory (connector_id TEXT PRIMARY KEY, json TEXT NOT NULL);`);
    new TicketBook(this.sql);
    new LinkBook(this.sql);
  }
}
