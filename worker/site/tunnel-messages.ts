/**
 * What arrives on a tunnel: one connector's WebSocket messages, decoded into frames and handed to
 * their owner: HELLO and INVENTORY to the connector book (through the handshake's checks), stream
 * frames to the stream book, REPLY to the pending requests. Anything malformed drops the
 * connector with 1002 (docs/protocol.md); nothing else is affected.
 */
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { type Frame, FrameType, ProtocolError, decodeMessage } from "../../shared/protocol/frames.ts";
import { HEARTBEAT_REPLY, HEARTBEAT_REQUEST, MAX_MESSAGE_BYTES } from "../../shared/protocol/limits.ts";
import type { AuditEvent } from "../registry/audit-store.ts";
import { coalesceData } from "../relay/coalesce.ts";
import { VERSION } from "../version.ts";
import type { ConnectorBook } from "./connector-book.ts";
import type { ConnectorSocket } from "./connector-socket.ts";
import type { StreamBook } from "./stream-book.ts";
import { negotiate, outdated, readInventory, welcomeFrame } from "./tunnel-handshake.ts";
import type { TunnelRequests } from "./tunnel-requests.ts";

/** What the tunnel's messages reach in the site object. */
export interface TunnelParties {
  connectors: ConnectorBook;
  streams: StreamBook;
  requests: TunnelRequests;
  audit(event: AuditEvent): void;
  /** The site's name, for WELCOME. */
  site(): string;
}

export class TunnelMessages {
  private readonly to: TunnelParties;

  constructor(to: TunnelParties) {
    this.to = to;
  }

  /**
   * One message from a connector of the site. Returns true when it met a deadline the alarm was
   * set for (HELLO, or an OPEN's acknowledgement), so that the alarm can be moved, not left to
   * fire for nothing. The frames it queues are the caller's to flush.
   */
  receive(connector: ConnectorSocket, message: string | ArrayBuffer): boolean {
    const { connectors } = this.to;
    if (typeof message === "string") {
      // The runtime answers heartbeats itself; reaching here means a heartbeat it did not match.
      if (message === HEARTBEAT_REQUEST) connector.ws.send(HEARTBEAT_REPLY);
      else connectors.drop(connector, CloseCode.protocolError, "text messages are not part of the tunnel protocol");
      return false;
    }
    if (message.byteLength > MAX_MESSAGE_BYTES) {
      connectors.drop(connector, CloseCode.protocolError, `message of ${message.byteLength} bytes is too large`);
      return false;
    }
    const welcomed = connector.welcomed;
    let deadlineMet = false;
    try {
      for (const frame of coalesceData(decodeMessage(new Uint8Array(message)))) {
        if (!connectors.has(connector)) break;
        if (this.frame(connector, frame)) deadlineMet = true;
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      connectors.drop(connector, CloseCode.protocolError, `protocol error: ${err.message}`);
    }
    return deadlineMet || (!welcomed && connector.welcomed);
  }

  /** One frame; true when it met an OPEN's acknowledgement deadline. */
  private frame(connector: ConnectorSocket, frame: Frame): boolean {
    if (!connector.welcomed) {
      if (frame.type !== FrameType.hello) throw new ProtocolError("the first frame must be HELLO");
      this.hello(connector, frame.json);
      return false;
    }
    switch (frame.type) {
      case FrameType.inventory: {
        const inventory = readInventory(frame.json);
        this.to.connectors.inventory(connector, inventory.hypervisors, inventory.draining);
        return false;
      }
      case FrameType.reply:
        this.to.requests.answer(connector, frame.stream, frame.json);
        return false;
      case FrameType.data:
      case FrameType.credit:
      case FrameType.openOk:
      case FrameType.openAck:
      case FrameType.openError:
      case FrameType.close:
        return this.to.streams.fromConnector(connector, frame);
      default:
        throw new ProtocolError(`frame type 0x${frame.type.toString(16)} is not sent by connectors`);
    }
  }

  private hello(connector: ConnectorSocket, json: unknown): void {
    const result = negotiate(json);
    if (!result.ok) return this.to.connectors.drop(connector, CloseCode.upgradeRequired, result.reason);
    const hello = result.hello;
    const tooOld = outdated(hello, VERSION);
    this.to.connectors.welcome(
      connector,
      {
        protocol: hello.protocol,
        software: hello.software,
        capabilities: hello.capabilities,
        ...(hello.hostname ? { hostname: hello.hostname } : {}),
        ...(tooOld ? { outdated: tooOld } : {}),
      },
      hello.hypervisors,
    );
    this.to.audit({
      type: "connector.connected",
      actor: `connector:${connector.id}`,
      detail: {
        hostname: hello.hostname ?? null,
        software: hello.software,
        capabilities: hello.capabilities,
        address: connector.attachment.address ?? null,
        hypervisors: hello.hypervisors.map((h) => h.name),
      },
    });
    if (tooOld) this.to.audit({ type: "connector.outdated", actor: `connector:${connector.id}`, detail: { software: hello.software, edge: VERSION, why: tooOld } });
    connector.queue(welcomeFrame(hello.protocol, connector.id, this.to.site(), hello.capabilities));
  }
}
