/**
 * One Durable Object per site. It holds the site's connector sockets and every viewer socket of
 * the site's consoles, and pairs each viewer socket with a stream on a connector. Sockets use the
 * hibernation API: an idle site costs nothing, and all in-memory state is rebuilt from socket
 * attachments and SQLite when the object wakes.
 *
 * This class makes the books and routes the object's events to them: upgrades (`upgrades.ts`), a
 * tunnel's messages (`tunnel-messages.ts`), a viewer's messages and any socket's end (the books),
 * and the alarm. It holds no state of its own: connectors are `ConnectorBook`'s, consoles
 * `StreamBook`'s. What the Worker may ask it is in its base class, `SiteRpc` (`site-rpc.ts`).
 */
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { HEARTBEAT_REPLY, HEARTBEAT_REQUEST } from "../../shared/protocol/limits.ts";
import type { Env } from "../env.ts";
import { migrate, SITE_MIGRATIONS } from "../storage/migrations.ts";
import { ConnectorBook, type ConnectorGone } from "./connector-book.ts";
import { reofferUnacknowledged } from "./open-watch.ts";
import { JoinBook, LinkJoins } from "./link-joins.ts";
import { ShareLinkBook } from "./share-links.ts";
import { Watching } from "./watching.ts";
import { SiteAlarm } from "./site-alarm.ts";
import { SiteAudit } from "./site-audit.ts";
import { SiteConfig } from "./site-config.ts";
import { SiteRpc } from "./site-rpc.ts";
import { RecordingBook } from "./recording-book.ts";
import { StreamBook } from "./stream-book.ts";
import { TicketBook } from "./tickets.ts";
import { ReachBook } from "./reach-book.ts";
import { TunnelMessages } from "./tunnel-messages.ts";
import { TunnelRequests } from "./tunnel-requests.ts";
import { limit, Upgrades } from "./upgrades.ts";

/** Kept where the API has always imported it from. */
export type { Owner } from "./site-api.ts";

export class SiteObject extends SiteRpc {
  protected readonly config: SiteConfig;
  protected readonly tickets: TicketBook;
  protected readonly links: ShareLinkBook;
  protected readonly connectors: ConnectorBook;
  protected readonly streams: StreamBook;
  protected readonly watching: Watching;
  protected readonly recordings: RecordingBook;
  protected readonly joins: LinkJoins;
  protected readonly requests = new TunnelRequests();
  protected readonly audit: SiteAudit;
  protected readonly alarms: SiteAlarm;
  protected readonly reach: ReachBook;
  private readonly tunnel: TunnelMessages;
  private readonly upgrades: Upgrades;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    migrate(ctx.storage, SITE_MIGRATIONS);
    this.config = new SiteConfig(ctx.storage.sql);
    this.audit = new SiteAudit(ctx, env, this.config);
    this.tickets = new TicketBook(ctx.storage.sql);
    this.links = new ShareLinkBook(ctx.storage.sql);
    this.reach = new ReachBook(ctx.storage.sql);
    this.connectors = new ConnectorBook(ctx, () => this.config.site ?? "this site", (gone) => this.connectorGone(gone));
    const idle = limit(env.IDLE_TIMEOUT_SECONDS, 0);
    this.streams = new StreamBook(ctx, idle > 0 ? idle * 1000 : null, (end) => {
      this.audit.consoleClosed(end);
      const a = end.stream.attachment;
      this.watching.changed(a.hypervisor, a.vm, { left: this.watching.label(a) });
      // A link's viewer who was let in may come back for a short while without asking again (link-joins.ts).
      if (a.joinId) this.joins.consoleEnded(a.joinId, end.code);
    });
    this.recordings = new RecordingBook(ctx, env.RECORDINGS, this.config, limit(env.RECORDING_RETENTION_DAYS, 30));
    this.streams.tap = this.recordings;
    this.watching = new Watching(this.streams, this.links);
    this.joins = new LinkJoins({
      book: new JoinBook(ctx.storage.sql),
      links: this.links,
      tickets: this.tickets,
      streams: this.streams,
      audit: this.audit,
      vmName: (hypervisor, vm) => this.vmName(hypervisor, vm),
    });
    this.alarms = new SiteAlarm(ctx.storage, {
      tickets: this.tickets,
      links: this.links,
      streams: this.streams,
      connectors: this.connectors,
      recordings: this.recordings,
      joins: this.joins.book,
    });
    this.tunnel = new TunnelMessages({
      connectors: this.connectors,
      streams: this.streams,
      requests: this.requests,
      audit: (event) => this.audit.send(event),
      site: () => this.config.site ?? "",
    });
    this.upgrades = new Upgrades({
      env,
      watching: this.watching,
      joins: this.joins,
      config: this.config,
      tickets: this.tickets,
      links: this.links,
      connectors: this.connectors,
      streams: this.streams,
      audit: this.audit,
      alarms: this.alarms,
    });
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_REQUEST, HEARTBEAT_REPLY));
    this.restore();
  }

  /** Rebuilds the books from the sockets that survived hibernation and from SQLite. */
  private restore(): void {
    this.connectors.restore();
    for (const lost of this.streams.restore((id) => this.connectors.get(id))) this.audit.consoleLost(lost);
    this.recordings.restore((id) => this.streams.get(id));
    // Recordings the restart interrupted now have an end, hence an expiry the alarm must serve.
    if (this.recordings.takeExpiryMoved()) void this.ctx.blockConcurrencyWhile(() => this.alarms.schedule().then(() => undefined));
    // CLOSE for consoles that could not be rebuilt: no event may follow to flush it.
    this.connectors.flushAll();
    // A wake with live sockets: worth a line for whoever runs `wrangler tail` (and the idle test).
    if (this.connectors.size > 0 || this.streams.size > 0) {
      console.log(JSON.stringify({ event: "site.woke", connectors: this.connectors.size, consoles: this.streams.size }));
    }
  }

  /** WebSocket upgrades, forwarded by the Worker. */
  override fetch(request: Request): Promise<Response> {
    return this.upgrades.handle(request);
  }

  // ---- hibernatable WebSocket events -----------------------------------------------------------

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const connector = this.connectors.messageFrom(ws);
    if (connector) {
      const deadlineMet = this.tunnel.receive(connector, message);
      this.connectors.flushAll();
      if (deadlineMet || this.recordings.takeExpiryMoved()) await this.alarms.schedule();
      return;
    }
    const stream = this.streams.forSocket(ws);
    if (!stream) return;
    const rearm = this.streams.fromViewer(stream, message);
    stream.connector.flush();
    if (rearm || this.recordings.takeExpiryMoved()) await this.alarms.schedule();
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.socketGone(ws, code, reason);
    // The last console on a connector closed: its heartbeat deadline needs no alarm any more.
    await this.alarms.schedule();
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.socketGone(ws, CloseCode.internal, "socket error");
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    for (const link of this.links.expiredUnnoted(now)) {
      const closed = this.closeLinkConsoles(link.id, "This share link expired.");
      this.links.noteExpiry(link.id);
      this.audit.send({ type: "link.expired", actor: "system", detail: { id: link.id, hypervisor: link.hypervisor, vm: link.vm, sessionsClosed: closed } });
    }
    // Viewers nobody let in within JOIN_WAIT_MS: the answer is no.
    this.joins.expire(now);
    const connectors = this.connectors.size;
    this.connectors.check(now);
    reofferUnacknowledged(this.streams, this.connectors, now);
    this.streams.overdue(now);
    this.connectors.flushAll();
    for (const rec of await this.recordings.expire(now)) {
      this.audit.send({ type: "recording.expired", actor: "system", detail: { id: rec.id, hypervisor: rec.hypervisor, vm: rec.vm, startedAt: rec.startedAt, bytes: rec.bytes } });
    }
    const next = await this.alarms.schedule(true);
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

  // ---- teardown --------------------------------------------------------------------------------

  /** The runtime let go of a socket: a connector's tunnel, or a viewer's console. */
  private socketGone(ws: WebSocket, code: number, reason: string): void {
    const connector = this.connectors.forSocket(ws);
    if (connector) {
      this.connectors.drop(connector, CloseCode.connectorOffline, `the site's connector disconnected (${code} ${reason})`);
      return;
    }
    this.streams.socketGone(ws, code, reason)?.connector.flush();
  }

  /** A connector left the book: what it carried ends. */
  private connectorGone({ connector, code, reason, welcomed }: ConnectorGone): void {
    if (welcomed) this.audit.send({ type: "connector.gone", actor: `connector:${connector.id}`, detail: { code, reason } });
    this.requests.connectorGone(connector);
    this.streams.closeWhere((a) => a.connectorId === connector.id, CloseCode.connectorOffline, "The site's connector went offline: try again in a moment.");
  }
}
