/**
 * One browser socket paired with one stream on a connector, and the credit accounting for both
 * directions. The object never queues more than one window per direction for a stream.
 */
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeCredit, encodeData } from "../../shared/protocol/frames.ts";
import {
  CREDIT_CHUNK_BYTES,
  MAX_DATA_BYTES,
  PLAIN_CLIENT_SILENCE_LIMIT_BYTES,
  STREAM_WINDOW_BYTES,
} from "../../shared/protocol/limits.ts";
import type { ConnectorLink } from "./connector-link.ts";
import { StreamFault } from "./stream-fault.ts";
import { ViewOnlyFilter } from "./view-only.ts";

export interface BrowserAttachment {
  kind: "browser";
  stream: number;
  connectorId: string;
  hypervisor: string;
  vm: string;
  user: string;
  /** The user's stable id (absent on share-link consoles): access ends by id, not by name. */
  userId?: string;
  /** The browser returns credit as it consumes (subprotocol porthole.credit.v1). */
  creditMode: boolean;
  openedAt: number;
  /** Input is filtered out at the edge (viewer role, or a view-only link). */
  viewOnly: boolean;
  /** Set when opened through a share link. */
  linkId?: string;
  /** The view-only filter finished the handshake (so it can resume after hibernation). */
  filterInMessages?: boolean;
}


export class BrowserStream {
  /** Bytes of browser input the connector still accepts on this stream. */
  private upCredit = STREAM_WINDOW_BYTES;
  private upQueue: Uint8Array[] = [];
  private upQueued = 0;
  /** Credit mode: bytes sent to the browser that it has not yet acknowledged. */
  private downOutstanding = 0;
  /** Plain mode: bytes forwarded but not yet returned to the connector as credit. */
  private plainOwed = 0;
  /** Plain mode: bytes sent to the browser since it last said anything. */
  private silentBytes = 0;
  bytesDown = 0;
  bytesUp = 0;
  private readonly filter: ViewOnlyFilter | null;

  readonly browser: WebSocket;
  readonly attachment: BrowserAttachment;
  readonly connector: ConnectorLink;

  /** `restored`: rebuilt after hibernation, when the connector may have a window in flight already. */
  constructor(browser: WebSocket, attachment: BrowserAttachment, connector: ConnectorLink, restored = false) {
    this.browser = browser;
    this.attachment = attachment;
    this.connector = connector;
    if (restored) this.downOutstanding = STREAM_WINDOW_BYTES;
    this.filter = !attachment.viewOnly
      ? null
      : restored
        ? ViewOnlyFilter.resumed(attachment.filterInMessages === true)
        : new ViewOnlyFilter();
  }

  get id(): number {
    return this.attachment.stream;
  }

  /** Console bytes from the connector, on their way to the browser. */
  down(bytes: Uint8Array): void {
    this.bytesDown += bytes.length;
    this.filter?.observeServer(bytes);
    if (this.attachment.creditMode) {
      this.downOutstanding += bytes.length;
      if (this.downOutstanding > STREAM_WINDOW_BYTES) {
        throw new StreamFault(CloseCode.internal, "connector overran the stream window");
      }
    } else {
      this.silentBytes += bytes.length;
      if (this.silentBytes > PLAIN_CLIENT_SILENCE_LIMIT_BYTES) {
        throw new StreamFault(CloseCode.tooSlow, "viewer stopped reading; console closed to protect the site");
      }
      this.plainOwed += bytes.length;
      if (this.plainOwed >= CREDIT_CHUNK_BYTES) {
        this.connector.queue(encodeCredit(this.id, this.plainOwed));
        this.plainOwed = 0;
      }
    }
    this.browser.send(bytes);
  }

  /** A credit grant from a credit-mode browser: it has consumed `text` more bytes. */
  grant(text: string): void {
    if (!this.attachment.creditMode) {
      throw new StreamFault(CloseCode.badRequest, "text messages are not part of RFB over WebSocket");
    }
    if (!/^[1-9][0-9]{0,9}$/.test(text)) throw new StreamFault(CloseCode.badRequest, "malformed credit message");
    // Never pass on more than was actually sent: a browser cannot inflate the connector's window.
    const bytes = Math.min(Number(text), this.downOutstanding);
    if (bytes === 0) return;
    this.downOutstanding -= bytes;
    this.connector.queue(encodeCredit(this.id, bytes));
  }

  /** Browser input (keys, pointer, RFB client messages) on its way to the console. */
  up(input: Uint8Array): void {
    this.silentBytes = 0;
    const bytes = this.filter ? this.filter.push(input) : input;
    if (this.filter?.inMessages && !this.attachment.filterInMessages) {
      this.attachment.filterInMessages = true;
      this.browser.serializeAttachment(this.attachment);
    }
    if (bytes.length === 0) return;
    this.bytesUp += bytes.length;
    if (this.upQueued === 0 && bytes.length <= this.upCredit) {
      this.sendUp(bytes);
      return;
    }
    this.upQueue.push(bytes);
    this.upQueued += bytes.length;
    if (this.upQueued > STREAM_WINDOW_BYTES) {
      throw new StreamFault(CloseCode.tooMuchInput, "viewer sent more input than the console accepts");
    }
    this.drainUp();
  }

  /** The connector wrote `bytes` to the console and accepts that much more. */
  credit(bytes: number): void {
    this.upCredit = Math.min(STREAM_WINDOW_BYTES, this.upCredit + bytes);
    this.drainUp();
  }

  private drainUp(): void {
    while (this.upQueue.length > 0 && this.upQueue[0]!.length <= this.upCredit) {
      const next = this.upQueue.shift()!;
      this.upQueued -= next.length;
      this.sendUp(next);
    }
  }

  private sendUp(bytes: Uint8Array): void {
    this.upCredit -= bytes.length;
    for (let at = 0; at < bytes.length; at += MAX_DATA_BYTES) {
      this.connector.queue(encodeData(this.id, bytes.subarray(at, at + MAX_DATA_BYTES)));
    }
  }
}
