/**
 * The one owner of the site's connectors: their live sockets and attachments, inventories (in
 * memory and in SQLite, so a wake has them), liveness (last heard, the HELLO deadline), suspect
 * and draining marks, and the choice of a connector for a new console. A connector joins, changes
 * and leaves here and nowhere else; what its leaving means for consoles and pending requests is
 * the caller's (`onGone`).
 */
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TIMEOUT_MS } from "../../shared/protocol/limits.ts";
import type { HypervisorInventory } from "../../shared/protocol/messages.ts";
import { closeQuietly } from "../relay/sockets.ts";
import { type ConnectorSocketAttachment, ConnectorSocket } from "./connector-socket.ts";
import { chooseConnector, type ConnectorWatch } from "./open-watch.ts";
import type { Refusal, SiteResult, SiteVm } from "./site-api.ts";

/** The hibernation tag of connector sockets. */
const CONNECTOR_TAG = "connector";
/** How often a stream of messages also checks the site's connectors (`messageFrom`). */
const CHECK_EVERY_MS = HEARTBEAT_INTERVAL_MS;
/** An alarm for a deadline fires this much after it, so the deadline has surely passed. */
export const ALARM_SLACK_MS = 1_000;

/** A connector left. `welcomed`: it was still the site's and had said HELLO (worth an audit row). */
export interface ConnectorGone {
  connector: ConnectorSocket;
  code: number;
  reason: string;
  welcomed: boolean;
}

export class ConnectorBook implements ConnectorWatch {
  private readonly ctx: DurableObjectState;
  private readonly sql: SqlStorage;
  private readonly byId = new Map<string, ConnectorSocket>();
  private readonly bySocket = new Map<WebSocket, ConnectorSocket>();
  /** Called once for every connector that leaves, before its socket is closed. */
  private readonly onGone: (gone: ConnectorGone) => void;
  /** The site's name, for the reasons `find` gives. */
  private readonly siteName: () => string;
  /** When `check` last ran (0: not since this instance woke). */
  private checkedAt = 0;

  constructor(ctx: DurableObjectState, siteName: () => string, onGone: (gone: ConnectorGone) => void) {
    this.ctx = ctx;
    this.sql = ctx.storage.sql;
    this.siteName = siteName;
    this.onGone = onGone;
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: string): ConnectorSocket | undefined {
    return this.byId.get(id);
  }

  /** The connector on a socket, while it is one of the site's (a dropped one is not). */
  forSocket(ws: WebSocket): ConnectorSocket | undefined {
    return this.bySocket.get(ws);
  }

  has(connector: ConnectorSocket): boolean {
    return this.byId.get(connector.id) === connector;
  }

  all(): ConnectorSocket[] {
    return [...this.byId.values()];
  }

  /** Connectors that said HELLO. */
  welcomed(): ConnectorSocket[] {
    return this.all().filter((c) => c.welcomed);
  }

  /** Accepts a connector's socket (hibernatable); it must say HELLO before the heartbeat timeout. */
  accept(ws: WebSocket, attachment: ConnectorSocketAttachment): ConnectorSocket {
    this.ctx.acceptWebSocket(ws, [CONNECTOR_TAG]);
    ws.serializeAttachment(attachment);
    const connector = new ConnectorSocket(ws, attachment);
    this.add(connector);
    return connector;
  }

  /** Rebuilds the book from the sockets that survived hibernation and the stored inventories. */
  restore(): void {
    const inventories = new Map(
      this.sql
        .exec<{ connector_id: string; json: string }>("SELECT connector_id, json FROM inventory")
        .toArray()
        .map((r) => [r.connector_id, JSON.parse(r.json) as HypervisorInventory[]]),
    );
    for (const ws of this.ctx.getWebSockets(CONNECTOR_TAG)) {
      const att = ws.deserializeAttachment() as ConnectorSocketAttachment | null;
      if (att?.kind !== "connector") continue;
      const connector = new ConnectorSocket(ws, att);
      connector.inventory = inventories.get(att.id) ?? [];
      this.add(connector);
    }
    // Inventory of connectors that left while the object was not running.
    for (const id of inventories.keys()) {
      if (!this.byId.has(id)) this.sql.exec("DELETE FROM inventory WHERE connector_id = ?", id);
    }
  }

  /**
   * A message arrived on `ws`. A connector's message proves it alive (a suspect one is trusted
   * again); the other connectors are checked now and then, while the object is awake anyway.
   * Returns the connector if `ws` is one of the site's (a viewer's socket: undefined).
   */
  messageFrom(ws: WebSocket, now = Date.now()): ConnectorSocket | undefined {
    const connector = this.bySocket.get(ws);
    connector?.heard(now);
    if (now - this.checkedAt > CHECK_EVERY_MS) this.check(now);
    return connector && this.has(connector) ? connector : undefined;
  }

  /** The last sign of life: a message, or a heartbeat the runtime answered without waking us. */
  heardAt(connector: ConnectorSocket): number {
    return connector.lastHeard(this.ctx);
  }

  markSuspect(connector: ConnectorSocket, now: number): void {
    connector.markSuspect(now);
  }

  /** HELLO was accepted: what it announced, and its first inventory. */
  welcome(connector: ConnectorSocket, patch: Partial<ConnectorSocketAttachment>, hypervisors: HypervisorInventory[]): void {
    connector.update(patch);
    this.setInventory(connector, hypervisors);
  }

  /** An INVENTORY frame: it replaces the last one, and says whether the connector is stopping. */
  inventory(connector: ConnectorSocket, hypervisors: HypervisorInventory[], draining: boolean): void {
    if (draining !== (connector.attachment.draining === true)) connector.update({ draining });
    this.setInventory(connector, hypervisors);
  }

  private setInventory(connector: ConnectorSocket, hypervisors: HypervisorInventory[]): void {
    connector.inventory = hypervisors;
    this.sql.exec("INSERT OR REPLACE INTO inventory (connector_id, json) VALUES (?, ?)", connector.id, JSON.stringify(hypervisors));
  }

  /** Every VM the site's connectors offer, once each (two connectors may serve one hypervisor). */
  vms(): SiteVm[] {
    const seen = new Set<string>();
    const out: SiteVm[] = [];
    for (const c of this.byId.values()) {
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

  /**
   * The connector for a new console: one that serves the VM, is not stopping, and was heard from
   * recently (fewest streams first); or why there is none, in words a person can act on.
   */
  find(hypervisor: string, vm: string): SiteResult<{ connector: ConnectorSocket }, 404 | 502 | 503> {
    // A half-open connector is never picked: it is dropped here, before anything is routed.
    this.check();
    const site = this.siteName();
    const refuse = (status: 404 | 502 | 503, code: string, message: string): Refusal<404 | 502 | 503> => ({ ok: false, status, code, message });
    const live = this.welcomed();
    if (live.length === 0) return refuse(503, "connector_offline", `No connector of site ${site} is online.`);
    const serving = this.serving(hypervisor, vm);
    if (serving.length > 0) return { ok: true, connector: chooseConnector(serving, (c) => this.heardAt(c), Date.now()) };
    if (live.some((c) => c.offers(hypervisor, vm) === "yes")) {
      return refuse(503, "connector_stopping", `The connector serving ${hypervisor} is stopping (a restart or an upgrade): try again in a moment.`);
    }
    const known = live.flatMap((c) => c.inventory.filter((h) => h.name === hypervisor));
    if (known.length === 0) return refuse(404, "unknown_hypervisor", `No connector of site ${site} serves a hypervisor named ${hypervisor}.`);
    const unreachable = known.find((h) => !h.reachable);
    if (unreachable && !known.some((h) => h.reachable)) {
      return refuse(502, "hypervisor_unreachable", `Hypervisor ${hypervisor} is unreachable: ${unreachable.error ?? "the connector cannot reach it"}.`);
    }
    return refuse(404, "unknown_vm", `VM ${vm} is not in hypervisor ${hypervisor}'s inventory.`);
  }

  /** Welcomed connectors, not stopping, that serve the VM. */
  serving(hypervisor: string, vm: string): ConnectorSocket[] {
    return this.welcomed().filter((c) => c.offers(hypervisor, vm) === "yes" && c.attachment.draining !== true);
  }

  /**
   * Drops connectors that are gone: silent past the heartbeat timeout (a half-open tunnel), or
   * never said HELLO. The runtime answers heartbeats without waking the object, so this runs
   * lazily whenever the object is awake anyway (an alarm, a console or ticket request, a listing,
   * now and then on a message) instead of on a timer of its own: an idle site costs nothing.
   */
  check(now = Date.now()): void {
    this.checkedAt = now;
    for (const connector of this.all()) {
      if (now - this.heardAt(connector) > HEARTBEAT_TIMEOUT_MS) {
        this.drop(connector, CloseCode.tooSlow, "no heartbeat from the connector");
      } else if (!connector.welcomed && now - connector.attachment.connectedAt > HEARTBEAT_TIMEOUT_MS) {
        this.drop(connector, CloseCode.protocolError, "no HELLO from the connector");
      }
    }
  }

  /**
   * When a connector needs the alarm: a new one's HELLO deadline, and, only while it carries
   * consoles, the moment it would have been silent for the heartbeat timeout (its viewers must
   * learn that it is gone). Idle connectors need none: `check` finds them when the object wakes.
   */
  nextDeadline(): number | null {
    let next: number | null = null;
    for (const c of this.byId.values()) {
      const t = !c.welcomed ? c.attachment.connectedAt : c.streams.size > 0 ? this.heardAt(c) : null;
      if (t !== null && (next === null || t + HEARTBEAT_TIMEOUT_MS + ALARM_SLACK_MS < next)) next = t + HEARTBEAT_TIMEOUT_MS + ALARM_SLACK_MS;
    }
    return next;
  }

  /** Removes a connector (the caller's `onGone` ends what it carried), then closes its socket. */
  drop(connector: ConnectorSocket, code: number, reason: string): void {
    const welcomed = this.has(connector) && connector.welcomed;
    this.byId.delete(connector.id);
    this.bySocket.delete(connector.ws);
    this.sql.exec("DELETE FROM inventory WHERE connector_id = ?", connector.id);
    this.onGone({ connector, code, reason, welcomed });
    closeQuietly(connector.ws, code, reason);
  }

  /** Sends what the event queued for each connector, one message each. */
  flushAll(): void {
    for (const connector of this.byId.values()) connector.flush();
  }

  private add(connector: ConnectorSocket): void {
    this.byId.set(connector.id, connector);
    this.bySocket.set(connector.ws, connector);
  }
}
