/**
 * Fence credit (mode.fenceCredit, once the viewer's SetEncodings listed the Fence pseudo-encoding
 * -312): a ServerFence with flags = Request only and an 8-byte payload, FENCE_TAG + a random u32
 * nonce, is injected at the last message boundary of every fromServer chunk that has unfenced bytes
 * before it (so every update is followed by one and an idle screen settles), and nowhere else: a
 * chunk goes to the viewer as one WebSocket message, processed in one go, so one fence proves as
 * much as several would. noVNC answers a fence request as soon as it parses it, with the flags
 * masked to BlockBefore|BlockAfter (0 here) and the payload echoed; it fails on a fence without the
 * Request flag, and uses a fence for nothing else. A viewer's ClientFence without the Request flag,
 * 8 bytes long and carrying our tag, is removed from the stream (the server never sent it); if its
 * nonce is one we remember, everything fromServer returned up to and including that fence is proven
 * processed. The nonce is random so a viewer cannot answer a fence it has not read. The server's own
 * fences (TigerVNC uses 1-byte payloads) and the viewer's answers to them pass untouched, as do the
 * viewer's own fence requests.
 */
import { STREAM_WINDOW_BYTES } from "../../../shared/protocol/limits.ts";
import type { Mode, TrackerState } from "./state.ts";

/** Outstanding fences remembered, at least FENCE_SPACING_BYTES apart: together a stream window. */
export const MAX_OUTSTANDING_FENCES = 8;
export const FENCE_SPACING_BYTES = STREAM_WINDOW_BYTES / MAX_OUTSTANDING_FENCES;
/** First 4 payload bytes of our fences. Its first byte is neither 0 nor 1, the payload types
 *  TigerVNC gives its own fences, should one of our answers ever reach a server. */
export const FENCE_TAG = [0x50, 0x48, 0x46, 0x31] as const; // "PHF1"
export const FENCE_REQUEST = 0x80000000;
/** A ServerFence carrying our payload: type, padding, flags, length, tag, nonce. */
const FENCE_BYTES = 17;

/** Fence nonces, drawn from the system's random source a batch at a time (one call per fence costs more than the rest of a chunk's work). */
const nonces = new Uint32Array(256);
let noncesLeft = 0;
function nextNonce(): number {
  if (noncesLeft === 0) {
    crypto.getRandomValues(nonces);
    noncesLeft = nonces.length;
  }
  return nonces[--noncesLeft]!;
}

/** Fences are being injected: fence credit is on, the viewer announced -312, framing is exact. */
export function fencing(mode: Mode, st: TrackerState): boolean {
  return mode.fenceCredit && st.viewerWantsFences && st.handshakeDone && !st.lost;
}

/** A new fence, counted as returned at the current position and remembered. */
export function makeFence(st: TrackerState): Uint8Array {
  const nonce = nextNonce();
  const fence = new Uint8Array(FENCE_BYTES);
  const view = new DataView(fence.buffer);
  fence[0] = 248;
  view.setUint32(4, FENCE_REQUEST);
  fence[8] = 8;
  fence.set(FENCE_TAG, 9);
  view.setUint32(13, nonce);
  st.returned += fence.length;
  st.lastFenceEnd = st.returned;
  // Remembered fences are kept FENCE_SPACING_BYTES apart (except the newest), so the few the state
  // holds cover a whole stream window: a newer fence replaces a newest one that is too close to
  // its predecessor (the replaced one's answer then earns nothing; the newer one covers it).
  const f = st.fences;
  const last = f.at(-1);
  const before = f.length >= 2 ? f[f.length - 2]!.returnedAt : st.proven;
  const fresh = { nonce, returnedAt: st.returned, receivedAt: st.received };
  if (last && last.returnedAt - before < FENCE_SPACING_BYTES) f[f.length - 1] = fresh;
  else f.push(fresh);
  if (f.length > MAX_OUTSTANDING_FENCES) f.shift();
  return fence;
}

/** A ClientFence header (17 bytes, no Request flag, 8-byte payload) carries our tag. */
export function hasOurTag(b: ArrayLike<number>): boolean {
  return FENCE_TAG.every((v, k) => b[9 + k] === v);
}

/** The viewer answered one of our fences: everything up to it is proven processed. */
export function fenceAnswered(st: TrackerState, nonce: number): void {
  const k = st.fences.findIndex((f) => f.nonce === nonce);
  if (k < 0) return; // forgotten or forged: dropped, no credit
  const { returnedAt, receivedAt } = st.fences[k]!;
  st.fences.splice(0, k + 1);
  if (returnedAt > st.proven) st.proven = returnedAt;
  if (receivedAt > st.provenReceived) st.provenReceived = receivedAt;
}
