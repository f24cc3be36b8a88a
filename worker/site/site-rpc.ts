/**
 * What the Worker may ask a site object (RPC), in one place. Every answer that can be refused is
 * a `SiteResult` (worker/site/site-api.ts): `{ ok: true, … }` or `{ ok: false, status, code,
 * message }`, which the API turns into its error as it stands.
 *
 * RPC methods must be methods of the Durable Object's class, so this is the base class of
 * `SiteObject` (site-object.ts), which makes the books and handles the object's events; this
 * class only reads and changes the books.
 */
import { DurableObject } from "cloudflare:workers";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { Capability } from "../../shared/protocol/messages.ts";
import type { Env } from "../env.ts";
import { closeQuietly } from "../relay/sockets.ts";
import { migrate, SITE_MIGRATIONS } from "../storage/migrations.ts";
import type { ConnectorBook } from "./connector-book.ts";
import { linkPass } from "./link-pass.ts";
import type { LinkJoins } from "./link-joins.ts";
import { type LinkOptions, linkState, type ShareLinkBook, usableLink } from "./share-links.ts";
import { limit } from "./upgrades.ts";
import type { Watching } from "./watching.ts";
import type { SiteAlarm } from "./site-alarm.ts";
import type {
  ConnectorInfo,
  LinkCreated,
  LinkInfo,
  LinkRevoked,
  LinkPass,
  LinkStatus,
  Owner,
  Refusal,
  ConsoleEnded,
  JoinAnswered,
  LinkJoinAsked,
  LinkJoinLook,
  SessionInfo,
  SiteVm,
  TicketResult,
  VncUrlsResult,
} from "./site-api.ts";
import type { SiteAudit } from "./site-audit.ts";
import type { SiteConfig } from "./site-config.ts";
import type { StreamBook } from "./stream-book.ts";
import type { RecordingBook } from "./recording-book.ts";
import type { Recording, RecordingDetail, RecordingPolicy, RecordingQuery } from "../../shared/api/types.ts";
import type { ConsoleGrant, TicketBook } from "./tickets.ts";
import type { TunnelRequests } from "./tunnel-requests.ts";
import { atLeast, levelEnds, needed } from "../access/decide.ts";
import type { AccessLevel } from "../../shared/api/types.ts";
import { endedReason, type ReviewWhy, type VersionedReach } from "../access/review.ts";
import { levelOn, type ReachBook, vmRef } from "./reach-book.ts";

/** Whether `owner` made a link: by id; by name only for links made before ids existed. */
export function owns(owner: Owner, createdById: string | null, createdBy: string): boolean {
  return createdById === null ? createdBy === owner.name : createdById === owner.id;
}

const ACCESS_REMOVED: Refusal<403> = { ok: false, status: 403, code: "access_removed", message: "Your access was removed." };

export abstract class SiteRpc extends DurableObject<Env> {
  protected abstract readonly config: SiteConfig;
  protected abstract readonly tickets: TicketBook;
  protected abstract readonly links: ShareLinkBook;
  protected abstract readonly watching: Watching;
  protected abstract readonly connectors: ConnectorBook;
  protected abstract readonly streams: StreamBook;
  protected abstract readonly requests: TunnelRequests;
  protected abstract readonly audit: SiteAudit;
  protected abstract readonly alarms: SiteAlarm;
  protected abstract readonly reach: ReachBook;
  protected abstract readonly recordings: RecordingBook;
  protected abstract readonly joins: LinkJoins;

  // ---- the site ------------------------------------------------------------------------------

  initialize(site: string, tokenHash: string): void {
    this.config.site = site;
    this.config.tokenHash = tokenHash;
  }

  /** A new connector token: every connector that joined with the old one is dropped. */
  rotateConnectorToken(tokenHash: string, actor: string): number {
    this.config.tokenHash = tokenHash;
    const dropped = this.connectors.all();
    for (const connector of dropped) this.connectors.drop(connector, CloseCode.unauthorized, "The site's connector token was rotated.");
    this.connectors.flushAll();
    this.audit.send({ type: "site.token_rotated", actor, detail: { connectorsDropped: dropped.length } });
    return dropped.length;
  }

  /** The site is deleted: every socket closes, then the object forgets everything it stored. */
  async destroy(actor: string): Promise<void> {
    this.audit.send({ type: "site.deleted", actor, detail: { connectors: this.connectors.size, consoles: this.streams.size } });
    this.streams.closeWhere(() => true, CloseCode.gone, "This site was deleted.");
    for (const connector of this.connectors.all()) this.connectors.drop(connector, CloseCode.unauthorized, "This site was deleted.");
    for (const ws of this.ctx.getWebSockets()) closeQuietly(ws, CloseCode.gone, "This site was deleted.");
    const recordings = await this.recordings.destroy();
    if (recordings > 0) this.audit.send({ type: "recording.deleted", actor, detail: { site: this.config.site, recordings, why: "site deleted" } });
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    // The object may live on in memory and be asked to initialize the name again: recreate the schema.
    migrate(this.ctx.storage, SITE_MIGRATIONS);
  }

  // ---- connectors and VMs --------------------------------------------------------------------

  describe(): ConnectorInfo[] {
    this.connectors.check();
    return this.connectors.welcomed().map((c) => ({
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

  /** Connectors with what an operator needs to spot an impostor: host, version, address, time. */
  describeConnectors(): (ConnectorInfo & { address: string | null })[] {
    return this.describe().map((info) => ({ ...info, address: this.connectors.get(info.id)?.attachment.address ?? null }));
  }

  // ---- recordings (docs/recording.md) ---------------------------------------------------------

  recordingPolicy(): { recording: RecordingPolicy; recordInput: boolean } {
    return { recording: this.config.recording, recordInput: this.config.recordInput };
  }

  /** Changes which consoles are recorded from the next one opened on; consoles open now keep theirs. */
  setRecordingPolicy(change: { recording?: RecordingPolicy; recordInput?: boolean }, actor: string): { recording: RecordingPolicy; recordInput: boolean } {
    if (change.recording !== undefined) this.config.recording = change.recording;
    if (change.recordInput !== undefined) this.config.recordInput = change.recordInput;
    const now = this.recordingPolicy();
    this.audit.send({ type: "site.recording_changed", actor, detail: now });
    return now;
  }

  listRecordings(q: RecordingQuery & { limit?: number }): Recording[] {
    return this.recordings.list(q);
  }

  getRecording(id: string): RecordingDetail | null {
    const rec = this.recordings.get(id);
    const files = rec && this.recordings.files(id);
    return rec && files ? { ...rec, segmentBytes: files.segments.map((s) => s.bytes) } : null;
  }

  recordingFiles(id: string): { keys: string[] } | null {
    const f = this.recordings.files(id);
    return f ? { keys: f.keys } : null;
  }

  async deleteRecording(id: string, actor: string): Promise<boolean | "open"> {
    const rec = this.recordings.get(id);
    const done = await this.recordings.delete(id);
    if (done === true && rec) {
      this.audit.send({ type: "recording.deleted", actor, detail: { id, hypervisor: rec.hypervisor, vm: rec.vm, startedAt: rec.startedAt, bytes: rec.bytes } });
    }
    return done;
  }

  listVms(): SiteVm[] {
    this.connectors.check();
    return this.connectors.vms();
  }

  /** A VM's name for people, from the connectors' inventory (its id when no connector lists it now). */
  protected vmName(hypervisor: string, vm: string): string {
    return this.connectors.vms().find((v) => v.hypervisor === hypervisor && v.id === vm)?.name ?? vm;
  }

  /**
   * The seed's LAN URLs for a VM. They give full control of its console from the LAN, so they need
   * the control level on it, decided as for tickets (404 for a VM the caller may not see). Only the
   * connector holds hypervisor credentials, so it fetches the VNC information; the object just asks.
   */
  async vncUrls(hypervisor: string, vm: string, who: { userId?: string; reach: VersionedReach }): Promise<VncUrlsResult> {
    const level = this.levelFor(who.userId, who.reach, hypervisor, vm);
    if (level === null) return { ok: false, status: 404, code: "unknown_vm", message: `There is no VM ${vm} on ${hypervisor} for you.` };
    if (!atLeast(level, "control")) return { ok: false, status: 403, code: "forbidden", message: `The LAN addresses of ${vm} give full control of its console; you have ${level}.` };
    const found = this.connectors.find(hypervisor, vm);
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

  // ---- consoles ------------------------------------------------------------------------------

  /** The most `reach` gives on a VM of this site (worker/access/decide.ts), with the newest reach this site knows. */
  protected levelFor(userId: string | undefined, reach: VersionedReach, hypervisor: string, vm: string) {
    return levelOn(this.reach.current(userId, reach), this.config.site ?? "", this.connectors.vms(), hypervisor, vm);
  }

  /** What `reach` may see of the site's VMs, each with its level (GET /api/sites/:site/vms). */
  visibleVms(userId: string, reach: VersionedReach): (SiteVm & { level: AccessLevel; until?: string })[] {
    this.connectors.check();
    const site = this.config.site ?? "";
    const current = this.reach.current(userId, reach);
    const vms = this.connectors.vms();
    const now = Date.now();
    return vms.flatMap((v) => {
      const level = levelOn(current, site, vms, v.hypervisor, v.id, now);
      if (!level) return [];
      const ends = levelEnds(current.role, current.grants, vmRef(site, vms, v.hypervisor, v.id), now, level);
      return [{ ...v, level, ...(ends !== undefined ? { until: new Date(ends).toISOString() } : {}) }];
    });
  }

  /**
   * A console ticket for what the user may do on the VM: view-only when that is all their role and
   * grants give (or when asked for). 404 for a VM they may not see, as for one that does not exist.
   */
  async createTicket(req: Omit<ConsoleGrant, "viewOnly"> & { viewOnly?: boolean; reach: VersionedReach }): Promise<TicketResult> {
    const level = this.levelFor(req.userId, req.reach, req.hypervisor, req.vm);
    if (level === null) return { ok: false, status: 404, code: "unknown_vm", message: `There is no VM ${req.vm} on ${req.hypervisor} for you.` };
    const viewOnly = req.viewOnly === true || !atLeast(level, "control");
    if (!this.tickets.allowed(req.userId)) return ACCESS_REMOVED;
    const found = this.connectors.find(req.hypervisor, req.vm);
    if (!found.ok) return found;
    const { reach: _, ...grant } = req;
    const { ticket, expiresAt } = await this.tickets.issue({ ...grant, viewOnly });
    await this.alarms.schedule();
    return { ok: true, ticket, expiresAt, viewOnly };
  }

  /** Live consoles (GET /api/sessions). */
  listSessions(): SessionInfo[] {
    const site = this.config.site ?? "";
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
        watcher: this.watching.label(a),
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
  endSession(stream: number, actor: string, owner: Owner | null): ConsoleEnded {
    const found = this.streams.get(stream);
    const a = found?.attachment;
    const link = a?.linkId ? this.links.byId(a.linkId) : null;
    const allowed = link ? owns(owner ?? { id: "", name: "" }, link.createdById ?? null, link.createdBy) : a?.userId !== undefined && a.userId === owner?.id;
    if (!found || (owner !== null && !allowed)) return { ok: false, status: 404, code: "unknown_session", message: `There is no live console ${stream} of yours.` };
    this.streams.close(found, CloseCode.terminated, `This console was ended by ${actor}.`);
    this.connectors.flushAll();
    return { ok: true };
  }

  // ---- share links ---------------------------------------------------------------------------

  async createLink(req: {
    hypervisor: string;
    vm: string;
    viewOnly: boolean;
    ttlMs: number;
    user: string;
    userId?: string;
    reach: VersionedReach;
  } & LinkOptions): Promise<LinkCreated> {
    const level = this.levelFor(req.userId, req.reach, req.hypervisor, req.vm);
    if (level === null) return { ok: false, status: 404, code: "unknown_vm", message: `There is no VM ${req.vm} on ${req.hypervisor} for you.` };
    if (!atLeast(level, "share")) return { ok: false, status: 403, code: "forbidden", message: `Sharing ${req.vm} needs the share level; you have ${level}.` };
    if (!this.tickets.allowed(req.userId)) return ACCESS_REMOVED;
    const found = this.connectors.find(req.hypervisor, req.vm);
    if (!found.ok) return found;
    const expiresAt = Date.now() + req.ttlMs;
    const { id, secret, pin } = await this.links.create(
      {
        hypervisor: req.hypervisor,
        vm: req.vm,
        viewOnly: req.viewOnly,
        createdBy: req.user,
        createdById: req.userId ?? null,
        expiresAt,
      },
      { pin: req.pin === true, startsAt: req.startsAt ?? null, maxUses: req.maxUses ?? null, maxViewers: req.maxViewers ?? null, note: req.note ?? null, approval: req.approval === true },
    );
    this.audit.send({
      type: "link.created",
      actor: req.user,
      detail: { id, hypervisor: req.hypervisor, vm: req.vm, viewOnly: req.viewOnly, expiresAt: new Date(expiresAt).toISOString(), pin: pin !== undefined,
        ...(req.approval ? { approval: true } : {}),
        ...(req.startsAt ? { startsAt: new Date(req.startsAt).toISOString() } : {}), ...(req.maxUses ? { maxUses: req.maxUses } : {}), ...(req.maxViewers ? { maxViewers: req.maxViewers } : {}) },
    });
    await this.alarms.schedule();
    return { ok: true, id, secret, expiresAt, ...(pin ? { pin } : {}) };
  }

  listLinks(): LinkInfo[] {
    const site = this.config.site ?? "";
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
      pin: l.pin,
      pinFailures: l.pinFailures,
      startsAt: l.startsAt === null ? null : new Date(l.startsAt).toISOString(),
      maxUses: l.maxUses,
      uses: l.uses,
      maxViewers: l.maxViewers ?? limit(this.env.MAX_CONSOLES_PER_LINK, 10),
      note: l.note,
      approval: l.approval,
      waiting: this.joins.waitingOn(l.id),
      sessions: this.streams.where((a) => a.linkId === l.id).length,
      watchers: this.watching.of(l.hypervisor, l.vm).map((w) => w.name),
    }));
  }

  /** Share links with their creator's id, for ownership checks by id. `owner` null: all. */
  linksOf(owner: Owner | null): (LinkInfo & { createdById: string | null })[] {
    return this.listLinks()
      .map((l) => ({ ...l, createdById: this.links.byId(l.id)?.createdById ?? null }))
      .filter((l) => owner === null || owns(owner, l.createdById, l.createdBy));
  }

  async linkStatus(secret: string): Promise<LinkStatus> {
    const usable = await usableLink(this.links, secret);
    if (!usable.ok) return usable;
    const { link } = usable;
    return { ok: true, expiresAt: link.expiresAt, viewOnly: link.viewOnly, vm: link.vm, vmName: this.vmName(link.hypervisor, link.vm), pin: link.pin, approval: link.approval };
  }

  /** A link's PIN for a pass to its socket (link-pass.ts). */
  linkPass(secret: string, pin: string): Promise<LinkPass> {
    return linkPass({ links: this.links, tickets: this.tickets, audit: this.audit }, secret, pin);
  }

  /** Whether this site holds link `id` (the Worker finds a link's site by asking). */
  hasLink(id: string): boolean {
    return this.links.byId(id) !== null;
  }

  /** `POST /l/:site/join` (link-joins.ts). */
  async linkJoin(secret: string, name: string, pass?: string): Promise<LinkJoinAsked> {
    const asked = await this.joins.ask(secret, name, pass);
    // Its deadline: no answer by then is no, said by the alarm to everyone who was asked.
    if (asked.ok) await this.alarms.schedule();
    return asked;
  }

  /** `GET /l/:site/join/:id` (link-joins.ts). */
  linkJoinLook(secret: string, id: string, token: string): Promise<LinkJoinLook> {
    return this.joins.look(secret, id, token);
  }

  /**
   * Allow or deny a link's waiting viewer: anyone in control of that VM's console may (the control
   * level), as the prompt on their console page offers. 404 for a link or request they cannot see.
   */
  answerLinkJoin(req: { link: string; join: string; allow: boolean; user: string; userId?: string; reach: VersionedReach }): JoinAnswered {
    const link = this.links.byId(req.link);
    const join = this.joins.book.get(req.join);
    const unknown: JoinAnswered = { ok: false, status: 404, code: "unknown_join", message: `There is no request ${req.join} to join link ${req.link}.` };
    if (!link || !join || join.linkId !== link.id) return unknown;
    const level = this.levelFor(req.userId, req.reach, link.hypervisor, link.vm);
    if (level === null) return unknown;
    if (!atLeast(level, "control")) {
      return { ok: false, status: 403, code: "forbidden", message: `Letting viewers into ${this.vmName(link.hypervisor, link.vm)} needs control of its console; you have ${level}.` };
    }
    return this.joins.answer(link, join, req.allow, req.user);
  }

  /** Revokes a link if `owner` created it (null: an admin, any link), and closes its live consoles at once. */
  revokeLinkOf(id: string, actor: string, owner: Owner | null): LinkRevoked {
    const link = this.links.byId(id);
    if (!link || (owner !== null && !owns(owner, link.createdById ?? null, link.createdBy))) {
      return { ok: false, status: 404, code: "unknown_link", message: `There is no link ${id} of yours.` };
    }
    // A locked link may still be revoked (it ends for good, and its row says so).
    if (linkState(link) !== "active" && linkState(link) !== "locked") return { ok: false, status: 410, code: "link_ended", message: `Link ${id} has already ended.` };
    this.links.revoke(id);
    const closed = this.closeLinkConsoles(id, "This share link was revoked.");
    this.audit.send({ type: "link.revoked", actor, detail: { id, hypervisor: link.hypervisor, vm: link.vm, sessionsClosed: closed } });
    this.connectors.flushAll();
    return { ok: true };
  }

  // ---- access control ------------------------------------------------------------------------

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
      const closed = this.closeLinkConsoles(link.id, "This share link was revoked: its creator's access was removed.");
      this.audit.send({ type: "link.revoked", actor: "system", detail: { id: link.id, hypervisor: link.hypervisor, vm: link.vm, sessionsClosed: closed, why: reason } });
    }
    if (consoles || tickets || revoked.length) {
      this.audit.send({ type: "access.ended", actor: "system", detail: { userId, scope, consoles, tickets, links: revoked.length } });
    }
    this.connectors.flushAll();
    return { consoles, tickets, links: revoked.length };
  }

  /**
   * The registry says what a user may reach now (a grant removed or ended, a group left, a role
   * changed). Whatever `decide` no longer allows ends: full-control consoles where only view-only
   * remains (view-only ones stay), every console of a VM they lost, their tickets likewise, and
   * share links where they may no longer share. The answer is remembered for later requests.
   */
  reviewUserAccess(userId: string, reach: VersionedReach, why: ReviewWhy): { consoles: number; tickets: number; links: number } {
    this.reach.remember(userId, reach);
    const now = this.reach.current(userId, reach);
    const site = this.config.site ?? "";
    const vms = this.connectors.vms();
    const level = (hypervisor: string, vm: string) => levelOn(now, site, vms, hypervisor, vm);
    const name = (hypervisor: string, vm: string) => vms.find((v) => v.hypervisor === hypervisor && v.id === vm)?.name ?? vm;
    let consoles = 0;
    for (const s of this.streams.where((a) => a.userId === userId && a.linkId === undefined)) {
      const a = s.attachment;
      const have = level(a.hypervisor, a.vm);
      if (atLeast(have, needed({ viewOnly: a.viewOnly }))) continue;
      this.streams.close(s, CloseCode.gone, endedReason(why, name(a.hypervisor, a.vm), have !== null));
      consoles++;
    }
    let tickets = 0;
    for (const t of this.tickets.unredeemedOf(userId)) {
      if (atLeast(level(t.hypervisor, t.vm), needed({ viewOnly: t.viewOnly }))) continue;
      this.tickets.drop(t.hash);
      tickets++;
    }
    let links = 0;
    for (const link of this.links.activeByCreator(userId)) {
      if (atLeast(level(link.hypervisor, link.vm), "share")) continue;
      this.links.revoke(link.id);
      links++;
      const closed = this.closeLinkConsoles(link.id, "This share link was revoked: its creator's access ended.");
      this.audit.send({ type: "link.revoked", actor: "system", detail: { id: link.id, hypervisor: link.hypervisor, vm: link.vm, sessionsClosed: closed, why } });
    }
    if (consoles || tickets || links) this.audit.send({ type: "access.ended", actor: "system", detail: { userId, why, consoles, tickets, links } });
    this.connectors.flushAll();
    return { consoles, tickets, links };
  }

  /** The user may have consoles again (re-enabled, or promoted from viewer). */
  restoreUserAccess(userId: string): void {
    this.tickets.unblock(userId);
  }

  // ---- shared with the object's events -------------------------------------------------------

  /** Closes every console opened through a link; returns how many. */
  protected closeLinkConsoles(linkId: string, reason: string): number {
    // Its waiting viewers are turned away too (and the prompts about them go).
    this.joins.linkEnded(linkId);
    return this.streams.closeWhere((a) => a.linkId === linkId, CloseCode.gone, reason);
  }
}
