/**
 * RfbTracker: follows one console's RFB stream in both directions, byte by byte, without ever
 * holding a large message. It
 *  - tracks the handshake (RFB 3.3 / 3.7 / 3.8, security None and VNC auth, failures) and closes
 *    any viewer that chooses a security type the server did not offer (handshake.ts),
 *  - enforces view-only on the viewer → console direction (ClientInit shared flag forced to 1,
 *    only display requests pass, input is dropped silently, anything unframeable closes:
 *    client-filter.ts),
 *  - frames every console → viewer message after ServerInit, so it knows message boundaries
 *    (server-framing.ts),
 *  - when asked (fenceCredit), injects its own ServerFence requests at message boundaries and
 *    removes the viewer's answers, which prove how much of the console's output the viewer has
 *    processed: a credit signal for viewers that cannot return credit any other way (fences.ts).
 * This file is the API the relay uses; parser.ts runs the parse loops over the state in state.ts.
 *
 * Pure: no I/O, no Workers APIs (only crypto.getRandomValues for fence nonces). All state is in
 * one plain object, written small and JSON-safe by snapshot(), so a stream can resume after the
 * Durable Object hibernates, at any byte (snapshot.ts).
 *
 * Bounds: a direction never holds more than MAX_HEADER bytes of an unfinished message header plus,
 * during the handshake only, MAX_HELD bytes that cannot be parsed before the other direction says
 * how (RFB 3.3 ClientInit pipelined before the server's security type). Message bodies (pixel data,
 * clipboard texts, encoding lists) stream through and are counted, never stored.
 *
 * Facts: /work/shared/reference/rfb-view-only.md, RFC 6143, rfbproto.rst (community spec),
 * noVNC 1.7 core/rfb.js and core/decoders/*.js for what a real client does.
 */
import { concatBytes } from "../../../shared/protocol/frames.ts";
import { fencing, makeFence } from "./fences.ts";
import { RfbParser } from "./parser.ts";
import { readSnapshot, writeSnapshot, type RfbTrackerState } from "./snapshot.ts";
import { newState, type Mode } from "./state.ts";

export { FENCE_SPACING_BYTES, FENCE_TAG, MAX_OUTSTANDING_FENCES } from "./fences.ts";
export type { RfbTrackerState } from "./snapshot.ts";
export { MAX_HEADER, MAX_HELD, type Mode } from "./state.ts";

export class RfbTracker {
  private readonly mode: Mode;
  private readonly parser: RfbParser;
  private isDirty = false;

  constructor(mode: Mode, state?: RfbTrackerState) {
    this.mode = mode;
    this.parser = new RfbParser(mode, state ? readSnapshot(state) : newState());
  }

  /** Input messages the viewer has sent so far (counted when the viewer's messages are parsed). */
  get inputs(): number {
    return this.parser.st.inputs;
  }

  /** The viewer's input is being counted (watched, and its messages still framed). */
  get inputWatched(): boolean {
    return (this.mode.watchInput === true || this.mode.viewOnly || this.mode.fenceCredit) && !this.parser.st.lost;
  }

  /** ServerInit has passed. */
  get handshakeDone(): boolean {
    return this.parser.st.handshakeDone;
  }

  /** Where ServerInit begins in the console's bytes (offset since the stream opened), once known. */
  get serverInitAt(): number | undefined {
    return this.parser.st.serverInitAt;
  }

  /**
   * "exact" while both directions are framed. "lost" after an unframeable message or security type
   * (only possible when not view-only: view-only throws instead), and also once the handshake is
   * done when neither view-only nor fence credit needs framing (nothing is tracked then).
   */
  get framing(): "exact" | "lost" {
    const st = this.parser.st;
    return st.lost || st.serverUnframed ? "lost" : "exact";
  }

  /** Fences are being injected: fence credit is on, the viewer announced -312, framing is exact. */
  get fenceCreditActive(): boolean {
    return fencing(this.mode, this.parser.st);
  }

  /**
   * Console bytes of the server message in progress (0 between messages). No fence can prove these
   * before the message ends: a message larger than the stream window needs the caller to grant
   * credit for them some other way (e.g. as forwarded, under the plain-viewer silence limit).
   */
  get inMessageBytes(): number {
    const st = this.parser.st;
    return st.handshakeDone && !st.lost && !st.serverUnframed ? st.received - st.messageBoundary : 0;
  }

  /** Bytes returned by fromServer that no answered fence covers yet. */
  get unconfirmed(): number {
    const st = this.parser.st;
    return st.returned - st.proven;
  }

  /** The state changed since clearDirty() (any call that took bytes in changes it). */
  get dirty(): boolean {
    return this.isDirty;
  }
  clearDirty(): void {
    this.isDirty = false;
  }

  snapshot(): RfbTrackerState {
    return writeSnapshot(this.parser.st);
  }

  /**
   * Viewer bytes that were held during the handshake and became sendable because of server bytes
   * (RFB 3.3: the viewer's ClientInit may arrive before the server's security type). Call after
   * every fromServer; null when there is nothing.
   */
  takeHeldForServer(): Uint8Array | null {
    const st = this.parser.st;
    if (st.heldForServer.length === 0) return null;
    const bytes = Uint8Array.from(st.heldForServer);
    st.heldForServer = [];
    this.isDirty = true;
    return bytes;
  }

  /**
   * Console → viewer bytes. Returns what to send to the viewer, in order: the input (as subarrays,
   * never copied) with our ServerFence messages between messages when one is due. Then call
   * takeHeldForServer(). Throws StreamFault only when view-only and the stream cannot be framed.
   */
  fromServer(bytes: Uint8Array): Uint8Array[] {
    if (bytes.length === 0) return [];
    this.isDirty = true;
    const st = this.parser.st;
    if (st.lost || st.serverUnframed) {
      st.returned += bytes.length;
      st.received += bytes.length;
      return [bytes];
    }
    const lastBoundary = this.parser.serverChunk(bytes);
    if (lastBoundary >= 0) st.messageBoundary = st.received + lastBoundary;
    // One fence per chunk, at its last message boundary (if anything before it is unfenced):
    // every update is followed by one, and an idle screen settles. More fences inside one chunk
    // would prove nothing more: the chunk reaches the viewer as one WebSocket message, which a
    // viewer processes, and answers the fences in, in one go; each fence would only cost the
    // viewer an answer and the edge a billed incoming message.
    if (fencing(this.mode, st) && lastBoundary >= 0 && st.returned + lastBoundary > st.lastFenceEnd) {
      st.returned += lastBoundary;
      st.received += lastBoundary;
      const fence = makeFence(st);
      const rest = bytes.length - lastBoundary;
      st.returned += rest;
      st.received += rest;
      if (lastBoundary === 0) return [fence, bytes];
      const before = bytes.subarray(0, lastBoundary);
      return rest === 0 ? [before, fence] : [before, fence, bytes.subarray(lastBoundary)];
    }
    st.returned += bytes.length;
    st.received += bytes.length;
    return [bytes];
  }

  /**
   * Viewer → console bytes. `toServer`: what to forward (view-only: only display requests, shared
   * flag forced; our fence answers removed; SetEncodings rewritten when framing is needed).
   * `consumed`: bytes returned by fromServer (fences included) newly proven processed by the viewer.
   * `consumedInput`: the same point counted in fromServer's input bytes, i.e. console bytes: the
   * credit to return to the connector (our fences never came from it).
   * Throws StreamFault only when view-only (input it cannot frame, or a security type it cannot inspect).
   */
  fromViewer(bytes: Uint8Array): { toServer: Uint8Array; consumed: number; consumedInput: number } {
    const st = this.parser.st;
    const proven = st.proven;
    const provenReceived = st.provenReceived;
    if (bytes.length === 0) return { toServer: bytes, consumed: 0, consumedInput: 0 };
    this.isDirty = true;
    if (st.lost && st.client.held.length === 0 && st.client.header.length === 0) return { toServer: bytes, consumed: 0, consumedInput: 0 };
    const out = this.parser.viewerChunk(bytes);
    const toServer = out.length === 0 ? new Uint8Array(0) : out.length === 1 ? out[0]! : concatBytes(out);
    return { toServer, consumed: st.proven - proven, consumedInput: st.provenReceived - provenReceived };
  }
}
