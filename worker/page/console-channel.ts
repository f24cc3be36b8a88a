/**
 * What noVNC gets instead of the socket (noVNC takes any WebSocket-like "raw channel"): text
 * messages are the edge's notices, handed to `onNotice` and never given to noVNC, which speaks only
 * binary RFB; every binary message noVNC has handled is acknowledged as credit, and reported to
 * `onConsoleBytes` (the readout's rate, the stall watch).
 */
import { CREDIT_CHUNK_BYTES, CREDIT_SUBPROTOCOL } from "../../shared/protocol/limits.ts";

export interface ChannelHooks {
  onNotice(text: string): void;
  onConsoleBytes(size: number): void;
}

export class CreditChannel {
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  #ws: WebSocket;
  #hooks: ChannelHooks;
  #consumed = 0;

  constructor(ws: WebSocket, hooks: ChannelHooks) {
    this.#ws = ws;
    this.#hooks = hooks;
    ws.binaryType = "arraybuffer";
    ws.addEventListener("open", (ev) => this.onopen?.(ev));
    ws.addEventListener("message", (ev) => this.#message(ev));
    ws.addEventListener("close", (ev) => this.onclose?.(ev));
    ws.addEventListener("error", (ev) => this.onerror?.(ev));
  }

  get protocol(): string {
    return this.#ws.protocol;
  }
  get readyState(): number {
    return this.#ws.readyState;
  }
  get binaryType(): string {
    return "arraybuffer";
  }
  set binaryType(_: string) {
    // always arraybuffer: set once on the socket
  }
  send(data: ArrayBufferLike | ArrayBufferView): void {
    this.#ws.send(data as ArrayBuffer);
  }
  close(): void {
    this.#ws.close();
  }

  /**
   * A whole RFB client message of the page's own (the stall probe). noVNC sends each message whole
   * within one task, so one sent from a timer never lands inside another.
   */
  sendOwn(message: Uint8Array<ArrayBuffer>): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(message);
  }

  #message(ev: MessageEvent): void {
    if (typeof ev.data === "string") {
      this.#hooks.onNotice(ev.data);
      return;
    }
    const size = (ev.data as ArrayBuffer).byteLength;
    this.#hooks.onConsoleBytes(size);
    this.onmessage?.(ev);
    if (this.#ws.protocol !== CREDIT_SUBPROTOCOL) return;
    this.#consumed += size;
    if (this.#consumed >= CREDIT_CHUNK_BYTES && this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.send(String(this.#consumed));
      this.#consumed = 0;
    }
  }
}
