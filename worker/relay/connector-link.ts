/** One connector's socket as the site object sees it: what it announced, its streams, its outbox. */
import { concatFrames } from "../../shared/protocol/frames.ts";
import type { HypervisorInventory } from "../../shared/protocol/messages.ts";

export interface ConnectorAttachment {
  kind: "connector";
  id: string;
  connectedAt: number;
  /** Set once HELLO was accepted; before that only HELLO is allowed. */
  protocol: number | null;
  hostname?: string;
  /** CF-Connecting-IP of the upgrade request (null when absent, e.g. locally). */
  address?: string | null;
  /** The HELLO's `software` (name and version). */
  software?: string;
}

export class ConnectorLink {
  inventory: HypervisorInventory[] = [];
  readonly streams = new Set<number>();
  private outbox: Uint8Array[] = [];

  readonly ws: WebSocket;
  attachment: ConnectorAttachment;

  constructor(ws: WebSocket, attachment: ConnectorAttachment) {
    this.ws = ws;
    this.attachment = attachment;
  }

  get id(): string {
    return this.attachment.id;
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
    const message = concatFrames(this.outbox);
    this.outbox = [];
    try {
      this.ws.send(message);
    } catch {
      // The socket is closing; its close event tears the streams down.
    }
  }
}
