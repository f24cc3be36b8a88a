/**
 * The viewer's messages after ClientInit: framed so that view-only can pass display requests and
 * drop input (anything unframeable closes), our fences' answers can be removed and credited, the
 * viewer's input can be counted, and SetEncodings lists only what the console direction can frame.
 */
import { be32, s32, u16, u32 } from "./bytes.ts";
import { ENC_EXT_MOUSE, ENC_FENCE, FRAMEABLE, isTuning } from "./encodings.ts";
import { Unframeable } from "./faults.ts";
import { FENCE_REQUEST, fenceAnswered, hasOurTag } from "./fences.ts";
import type { RfbParser } from "./parser.ts";
import { setPixelFormat } from "./server-framing.ts";

/** One viewer message, its header in st.client.header: pass it, drop it, or wait for more header. */
export function clientMessage(parser: RfbParser): void {
  const st = parser.st;
  const d = st.client;
  const b = d.header;
  const viewOnly = parser.mode.viewOnly;
  const need = (n: number): boolean => {
    if (b.length >= n) return false;
    d.need = n;
    return true;
  };
  /** The whole message is in b: pass or drop it. */
  const whole = (pass: boolean): void => {
    if (pass) parser.emit(b);
    parser.setClientPhase("message", 1);
  };
  /** The header is in b, `body` bytes follow. */
  const stream = (pass: boolean, body: number): void => {
    if (pass) parser.emit(b);
    parser.setClientPhase("message", 1);
    d.body = body;
    d.passBody = pass;
  };
  switch (b[0]) {
    case 0: // SetPixelFormat
      if (need(20)) return;
      setPixelFormat(st, b, 4);
      return whole(true);
    case 2: // SetEncodings: streamed, rewritten one encoding at a time
      if (need(4)) return;
      parser.emit(b);
      st.encodingsLeft = u16(b, 2);
      st.lastKeptEncoding = null;
      st.encodingsRemoved = 0;
      st.listHasFence = false;
      st.listHasExtMouse = false;
      parser.setClientPhase("encoding", 0);
      return;
    case 3: // FramebufferUpdateRequest
      if (need(10)) return;
      return whole(true);
    case 4: // KeyEvent
      if (need(8)) return;
      st.inputs++;
      return whole(!viewOnly);
    case 5: // PointerEvent: 7 bytes with bit 7 set once ExtendedMouseButtons is asked AND confirmed
      if (need(2)) return;
      if (need(b[1]! & 0x80 && st.viewerWantsExtMouse && st.serverExtMouse ? 7 : 6)) return;
      st.inputs++;
      return whole(!viewOnly);
    case 6: // ClientCutText (negative length: extended clipboard)
      if (need(8)) return;
      st.inputs++;
      return stream(!viewOnly, Math.abs(s32(b, 4)));
    case 150: // EnableContinuousUpdates
      if (need(10)) return;
      return whole(true);
    case 248: {
      // ClientFence: ours are answered with our 8-byte payload and no Request flag.
      if (need(9)) return;
      const request = (u32(b, 4) & FENCE_REQUEST) !== 0;
      if (b[8] === 8 && !request && parser.mode.fenceCredit) {
        if (need(17)) return;
        if (hasOurTag(b)) {
          fenceAnswered(st, u32(b, 13));
          return whole(false);
        }
        return whole(true);
      }
      return stream(true, b[8]!);
    }
    case 250: // xvp: shutdown, reboot, reset
      if (need(4)) return;
      return whole(!viewOnly);
    case 251: // SetDesktopSize
      if (need(8)) return;
      return stream(!viewOnly, 16 * b[6]!);
    case 253: // gii: the length's byte order is bit 7 of the subtype (set: big endian)
      if (need(4)) return;
      return stream(!viewOnly, b[1]! & 0x80 ? u16(b, 2) : b[2]! | (b[3]! << 8));
    case 255: // QEMU: extended key event (12), audio (4 or 10)
      if (need(2)) return;
      if (b[1] === 0) {
        if (need(12)) return;
        st.inputs++;
        return whole(!viewOnly);
      }
      if (b[1] === 1) {
        if (need(4)) return;
        const op = u16(b, 2);
        if (op === 0 || op === 1) return whole(!viewOnly);
        if (op === 2) {
          if (need(10)) return;
          return whole(!viewOnly);
        }
      }
      throw new Unframeable(`QEMU message ${b[1]} cannot be framed`);
  }
  throw new Unframeable(`RFB message type ${b[0]} cannot be framed`);
}

/**
 * One step of a SetEncodings: st.client.header holds one encoding, or nothing when the list is
 * done. The count went out with the header, so the list keeps its length: a removed encoding is
 * replaced by a copy of a kept one.
 */
export function clientEncoding(parser: RfbParser): void {
  const st = parser.st;
  const mode = parser.mode;
  const d = st.client;
  if (d.need === 4) {
    const enc = s32(d.header, 0);
    st.encodingsLeft--;
    // Without view-only or fences the console's messages are not framed: nothing to narrow.
    const framed = mode.viewOnly || mode.fenceCredit;
    if (!framed || FRAMEABLE.has(enc) || isTuning(enc)) {
      // Removed ones before the first kept one are replaced by copies of it: same preference.
      for (let k = 0; k <= st.encodingsRemoved; k++) parser.emit(d.header);
      st.encodingsRemoved = 0;
      st.lastKeptEncoding = enc;
      if (enc === ENC_FENCE) st.listHasFence = true;
      if (enc === ENC_EXT_MOUSE) st.listHasExtMouse = true;
    } else if (st.lastKeptEncoding !== null) {
      // A removed encoding becomes a copy of the last kept one, which changes nothing (the first
      // occurrence sets the preference).
      parser.emit(be32(st.lastKeptEncoding));
    } else st.encodingsRemoved++;
  }
  if (st.encodingsLeft > 0) {
    parser.setClientPhase("encoding", 4);
    return;
  }
  // The list is complete. Nothing kept at all: Raw, which every server supports.
  for (let k = 0; k < st.encodingsRemoved; k++) parser.emit(be32(0));
  st.encodingsRemoved = 0;
  st.viewerWantsFences = st.listHasFence;
  st.viewerWantsExtMouse = st.listHasExtMouse;
  if (!st.viewerWantsExtMouse) st.serverExtMouse = false;
  parser.setClientPhase("message", 1);
}
