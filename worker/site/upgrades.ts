/**
 * The WebSocket upgrades the Worker forwards to the site object: a connector's tunnel (`/connect`,
 * its token checked against the site's digest) and a viewer's console (`/ws/console/…` with a
 * ticket, `/ws/link/…` with a share link), admitted, routed to a connector and opened in the
 * stream book. A refused viewer gets a socket closed at once with the reason, which the console
 * page can show (an HTTP error would reach it as a bare failure).
 */
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { BINARY_SUBPROTOCOL, CREDIT_SUBPROTOCOL } from "../../shared/protocol/limits.ts";
import { bearerToken, randomToken, secretsEqual, sha256Hex } from "../auth/secrets.ts";
import type { Env } from "../env.ts";
import { compressionHeaders, compressionWanted, refuseUpgrade } from "../relay/sockets.ts";
import type { ConnectorBook } from "./connector-book.ts";
import { LINK_ENDED, linkClosed, linkState, type ShareLinkBook } from "./share-links.ts";
import type { SiteAlarm } from "./site-alarm.ts";
import type { SiteAudit } from "./site-audit.ts";
import type { SiteConfig } from "./site-config.ts";
import type { StreamBook } from "./stream-book.ts";
import type { TicketBook } from "./tickets.ts";
import type { Watching } from "./watching.ts";
import type { LinkJoins } from "./link-joins.ts";

type Admission =
  | { ok: true; hypervisor: string; vm: string; user: string; userId?: string; viewOnly: boolean; linkId?: string; maxViewers?: number | null; viewerName?: string; joinId?: string }
  | { ok: false; code: number; reason: string };

/** What the upgrades read and change in the site object. */
export interface UpgradeParties {
  env: Env;
  config: SiteConfig;
  tickets: TicketBook;
  links: ShareLinkBook;
  connectors: ConnectorBook;
  streams: StreamBook;
  audit: SiteAudit;
  alarms: SiteAlarm;
  watching: Watching;
  joins: LinkJoins;
}

export function limit(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

export class Upgrades {
  private readonly to: UpgradeParties;

  constructor(to: UpgradeParties) {
    this.to = to;
  }

  handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/connect") return this.acceptConnector(request);
    if (url.pathname.startsWith("/ws/console/") || url.pathname.startsWith("/ws/link/")) return this.acceptViewer(request, url);
    return Promise.resolve(new Response("not found", { status: 404 }));
  }

  private async acceptConnector(request: Request): Promise<Response> {
    const presented = bearerToken(request.headers.get("Authorization")) ?? "";
    const stored = this.to.config.tokenHash;
    if (!stored || !(await secretsEqual(await sha256Hex(presented), stored))) {
      return Response.json(
        { error: { code: "invalid_connector_token", message: "The connector token is not valid for this site." } },
        { status: 401 },
      );
    }
    const pair = new WebSocketPair();
    this.to.connectors.accept(pair[1], {
      kind: "connector",
      id: randomToken(6),
      connectedAt: Date.now(),
      protocol: null,
      address: request.headers.get("CF-Connecting-IP"),
    });
    // Its HELLO deadline.
    await this.to.alarms.schedule();
    return new Response(null, { status: 101, webSocket: pair[0], headers: compressionHeaders(compressionWanted(this.to.env.CONNECTOR_WS_COMPRESSION, false)) });
  }

  private async acceptViewer(request: Request, url: URL): Promise<Response> {
    const { env, connectors, streams } = this.to;
    const offered = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
    // Our page returns credit; websockify's convention `binary` (many RFB clients still offer it)
    // is plain RFB, like offering nothing. A browser fails the upgrade if none of its offers is chosen.
    const subprotocol = offered.includes(CREDIT_SUBPROTOCOL) ? CREDIT_SUBPROTOCOL : offered.includes(BINARY_SUBPROTOCOL) ? BINARY_SUBPROTOCOL : null;
    const headers = {
      ...(subprotocol ? { "Sec-WebSocket-Protocol": subprotocol } : {}),
      ...compressionHeaders(compressionWanted(env.VIEWER_WS_COMPRESSION, false)),
    };

    const admission = url.pathname.startsWith("/ws/link/")
      ? await this.redeemLink(url.searchParams.get("link") ?? "", url.searchParams.get("pass") ?? "")
      : await this.redeemTicket(url.searchParams.get("ticket") ?? "");
    if (!admission.ok) return refuseUpgrade(admission.code, admission.reason, headers);
    const { hypervisor, vm, user, userId, viewOnly, linkId, maxViewers, viewerName, joinId } = admission;
    const busy = this.overLimit(user, linkId, maxViewers);
    if (busy) return refuseUpgrade(CloseCode.tooMuchInput, busy, headers);
    const found = connectors.find(hypervisor, vm);
    if (!found.ok) {
      const code = found.status === 404 ? CloseCode.notFound : found.status === 502 ? CloseCode.upstreamFailed : CloseCode.connectorOffline;
      return refuseUpgrade(code, found.message, headers);
    }
    const connector = found.connector;
    const { client, stream } = streams.open({
      connector,
      hypervisor,
      vm,
      user,
      ...(userId ? { userId } : {}),
      viewOnly,
      mode: subprotocol === CREDIT_SUBPROTOCOL ? "credit" : "plain",
      subprotocol,
      ...(linkId ? { linkId } : {}),
      ...(viewerName ? { viewerName } : {}),
      ...(joinId ? { joinId } : {}),
    });
    connector.flush();
    // An allowed viewer is seated: no rejoin without asking while this console lives.
    if (joinId) this.to.joins.book.seated(joinId);
    // A use is a console the link opened (refusals above count nothing).
    if (linkId) this.to.links.used(linkId);
    // Everyone on this VM's console (the newcomer included) hears who is there now.
    this.to.watching.changed(hypervisor, vm, { joined: this.to.watching.label(stream.attachment) });
    // Someone in control hears who is waiting to join this VM's console (link-joins.ts).
    this.to.joins.tellNewcomer(stream.attachment, (notice) => stream.notify(notice));
    this.to.audit.send({
      type: "console.opened",
      actor: user,
      detail: { stream: stream.id, hypervisor, vm, viewOnly, via: linkId ? "link" : "ticket", ...(linkId ? { link: linkId } : {}) },
    });
    await this.to.alarms.schedule();
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  /** Why another console may not open for this user or link, or null. */
  private overLimit(user: string, linkId: string | undefined, maxViewers?: number | null): string | null {
    const { env, streams } = this.to;
    if (linkId) {
      // The link's own limit (never above the var: POST /api/links checks) or the var.
      const max = maxViewers ?? limit(env.MAX_CONSOLES_PER_LINK, 10);
      if (streams.where((a) => a.linkId === linkId).length >= max) {
        return `This share link already has ${max} consoles open (the most allowed): close one first.`;
      }
      return null;
    }
    const max = limit(env.MAX_CONSOLES_PER_USER, 20);
    if (streams.where((a) => a.user === user && !a.linkId).length >= max) {
      return `You already have ${max} consoles open on this site (the most allowed): close one first.`;
    }
    return null;
  }

  private async redeemTicket(ticket: string): Promise<Admission> {
    const check = await this.to.tickets.redeem(ticket);
    // A share link's pass (a PIN's, or a let-in viewer's) opens only that link's socket, where the
    // link's own checks run (its viewers, its uses, its end, who is asked): never a console socket.
    if (check.ok && (check.grant.via !== undefined || check.grant.user.startsWith("link:"))) {
      return { ok: false, code: CloseCode.unauthorized, reason: "This is a share link's pass: open the share link itself." };
    }
    if (check.ok) return { ok: true, ...check.grant };
    const reasons: Record<typeof check.why, [number, string]> = {
      unknown: [CloseCode.unauthorized, "Unknown console ticket: ask for a new console."],
      used: [CloseCode.gone, "This console ticket was already used: ask for a new console."],
      expired: [CloseCode.gone, "This console ticket expired (tickets last 60 s): ask for a new console."],
    };
    const [code, reason] = reasons[check.why];
    return { ok: false, code, reason };
  }

  /**
   * A link with a PIN also needs `pass`: the single-use 60-s ticket `POST /l/:site/pin` gives for
   * the right code (a plain RFB upgrade cannot carry the PIN itself, and a PIN never goes in a URL).
   * A link that asks before each viewer joins needs the pass its viewer got once allowed
   * (link-joins.ts); a PIN's pass does not do there, and that pass names the viewer.
   */
  private async redeemLink(secret: string, pass: string): Promise<Admission> {
    const link = await this.to.links.bySecret(secret);
    if (!link) return { ok: false, code: CloseCode.unauthorized, reason: "Unknown share link." };
    const state = linkState(link);
    if (state !== "active") return { ok: false, code: CloseCode.gone, reason: LINK_ENDED[state] };
    const closed = linkClosed(link);
    if (closed) return { ok: false, code: closed.code === "link_used_up" ? CloseCode.gone : CloseCode.forbidden, reason: closed.message };
    const user = `link:${link.id}`;
    let viewerName: string | undefined;
    let joinId: string | undefined;
    if (link.pin || link.approval) {
      const check = pass ? await this.to.tickets.redeem(pass) : null;
      const via = link.approval ? "join" : "pin";
      const fits = check?.ok && check.grant.user === user && check.grant.hypervisor === link.hypervisor && check.grant.vm === link.vm && (check.grant.via ?? "pin") === via;
      if (!fits) {
        const reason = link.approval
          ? "This share link asks before each viewer joins: open the link's page in a browser, or use porthole listen, and wait to be let in."
          : "This share link needs its PIN: open the link's page in a browser and enter it there.";
        return { ok: false, code: CloseCode.unauthorized, reason };
      }
      viewerName = check.grant.viewerName;
      joinId = check.grant.joinId;
    }
    return { ok: true, hypervisor: link.hypervisor, vm: link.vm, user, viewOnly: link.viewOnly, linkId: link.id, maxViewers: link.maxViewers, ...(viewerName ? { viewerName } : {}), ...(joinId ? { joinId } : {}) };
  }
}
