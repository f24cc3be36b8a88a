/**
 * Which encodings the console direction can frame (server-framing.ts reads their rectangles), so
 * the viewer filter knows which may stay in a rewritten SetEncodings (client-filter.ts).
 */

export const ENC_FENCE = -312;
export const ENC_EXT_MOUSE = -316;
export const ENC_VMWARE_CURSOR = 0x574d5664;

/** Encodings the server direction can frame, so they may stay in a rewritten SetEncodings. */
export const FRAMEABLE = new Set<number>([
  0, // Raw
  1, // CopyRect
  2, // RRE
  5, // Hextile
  6, // zlib
  7, // Tight
  16, // ZRLE
  50, // Open H.264
  -260, // TightPNG
  -223, // DesktopSize
  -224, // LastRect
  -239, // Cursor
  -240, // XCursor
  -257, // QEMU pointer motion change (empty rect)
  -258, // QEMU extended key event (empty rect)
  -259, // QEMU audio (empty rect; server message 255/1)
  -261, // QEMU LED state
  -307, // DesktopName
  -308, // ExtendedDesktopSize
  -309, // xvp (server message 250)
  ENC_FENCE, // Fence (server message 248)
  -313, // ContinuousUpdates (server message 150)
  ENC_EXT_MOUSE, // ExtendedMouseButtons (empty rect)
  ENC_VMWARE_CURSOR, // VMware cursor
  0xc0a1e5ce | 0, // Extended clipboard (ServerCutText with a negative length)
]);

/** Pseudo-encodings that only tune the encoder and never produce rectangles. */
export function isTuning(enc: number): boolean {
  return (
    (enc >= -32 && enc <= -23) || // JPEG quality
    (enc >= -256 && enc <= -247) || // compression level
    (enc >= -512 && enc <= -412) || // JPEG fine-grained quality
    (enc >= -768 && enc <= -763) // JPEG subsampling
  );
}
