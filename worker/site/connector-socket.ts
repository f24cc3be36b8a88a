/**
 * One connector's socket as the site object sees it: what it announced, its streams, its outbox.
 * Only the connector book (connector-book.ts) changes its attachment; streams queue frames on it
 * through the relay's `TunnelOutbox`.
 */
import { concatBytes } from "../../shared/protocol/frames.ts";
import type { HypervisorInventory } from "../../shared/protocol/messages.ts";
import type { TunnelOutbox } from "../relay/viewer-stream.ts";

export interface ConnectorSocketAttachment {
  kind: "connector";
  id: string;
  connectedAt: number;
  /** Set once HELLO was accepted; before that only HELLO is allowed. */
  protocol: number | null;
  hostname?: string;
  /** HELLO's `software`, e.g. porthole-connector/0.3.0. */
  software?: string;
  /** Capabilities both sides agreed on in HELLO / WELCOME. */
  capabilities?: string[];
  /** Why this connector is older than the edge supports well (it still works). */
  outdated?: string;
  /** The connector is stopping: it takes no new consoles. */
  draining?: boolean;
  /** CF-Connecting-IP of the upgrade request (null when absent, e.g. locally). */
  address?: string | null;
  /** When it missed an OPEN's acknowledgement deadline (see open-watch.ts); cleared by any frame. */
  suspectSince?: number;
}

export class ConnectorSocket implements TunnelOutbox {
  inventory: HypervisorInventory[] = [];
  readonly streams = new Set<number>();
  /** When it last sent a message (heartbeats are answered by the runtime: see `lastHeard`). */
  lastMessageAt = 0;
  private outbox: Uint8Array[] = [];

  readonly ws: WebSocket;
  attachment: ConnectorSocketAttachment;

  constructor(ws: WebSocket, attachment: ConnectorSocketAttachment) {
    this.ws = ws;
    this.attachment = attachment;
  }

  get id(): string {
    return this.attachment.id;
  }

  get welcomed(): boolean {
    return this.attachment.protocol !== null;
  }

  /** Missed an OPEN's deadline and has sent nothing since: new consoles go elsewhere if they can. */
  get suspect(): boolean {
    return this.attachment.suspectSince !== undefined;
  }

  markSuspect(now: number): void {
    if (!this.suspect) this.update({ suspectSince: now });
  }

  /** A frame arrived: the connector is alive (a suspect one is trusted again). */
  heard(now: number): void {
    this.lastMessageAt = now;
    if (this.suspect) {
      const { suspectSince: _, ...rest } = this.attachment;
      this.attachment = rest;
      this.ws.serializeAttachment(rest);
    }
  }

  has(capability: string): boolean {
    return this.attachment.capabilities?.includes(capability) === true;
  }

  /** Changes the attachment; it is small and changes rarely, so it is written at once. */
  update(patch: Partial<ConnectorSocketAttachment>): void {
    this.attachment = { ...this.attachment, ...patch };
    this.ws.serializeAttachment(this.attachment);
  }

  /** The last sign of life: a message, or a heartbeat the runtime answered without waking us. */
  lastHeard(ctx: DurableObjectState): number {
    return Math.max(this.attachment.connectedAt, this.lastMessageAt, ctx.getWebSocketAutoResponseTimestamp(this.ws)?.getTime() ?? 0);
  }

  offers(hypervisor: string, vm: string): "yes" | "no-hypervisor" | "no-vm" {
    const hv = this.inventory.find((h) => h.name === hypervisor);
    if (!hv) return "no-hypervisor";
    return hv.vms.some((v) => v.id === vm) ? "yes" : "no-vm";
  }

  /** Frames queued during one event are sent as one message when the event ends. */
  queue(frame: Uint8Array): void {
    this.outbox.push(frame);
  }

  flush(): void {
    if (this.outbox.length === 0) return;
    const message = concatBytes(this.outbox);
    this.outbox = [];
    try {
      this.ws.send(message);
    } catch {
      // The socket is closing; its close event tears the streams down.
    }
  }
}
