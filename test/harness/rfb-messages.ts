/**
 * Client → server RFB message lengths, for the test and benchmark servers that must frame what a
 * viewer sends (RFC 6143 §7.5, plus QEMU's extended key event and xvp).
 */

/**
 * The whole message's length once its type byte and enough of its header are in: `null` means
 * "need more bytes to tell", `undefined` a type this table does not know (a server cannot frame it).
 */
export function clientMessageLength(b: Uint8Array): number | null | undefined {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (b[0]) {
    case 0: // SetPixelFormat
      return 20;
    case 2: // SetEncodings
      return b.length >= 4 ? 4 + 4 * view.getUint16(2) : null;
    case 3: // FramebufferUpdateRequest
      return 10;
    case 4: // KeyEvent
      return 8;
    case 5: // PointerEvent
      return 6;
    case 6: // ClientCutText (a negative length: the extended clipboard's payload)
      return b.length >= 8 ? 8 + Math.abs(view.getInt32(4)) : null;
    case 150: // EnableContinuousUpdates
      return 10;
    case 248: // ClientFence
      return b.length >= 9 ? 9 + b[8]! : null;
    default:
      return undefined;
  }
}
