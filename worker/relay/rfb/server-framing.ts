/**
 * Frames every console → viewer message after ServerInit, so the tracker knows message boundaries
 * (where fences may go) without holding a message: each step reads a header (in place, see
 * parser.ts) and sets how many body bytes stream through before the next header. This is the hot
 * path for every console byte: no allocation per header.
 */
import { s32, u16, u32 } from "./bytes.ts";
import { ENC_EXT_MOUSE, ENC_VMWARE_CURSOR } from "./encodings.ts";
import { Unframeable } from "./faults.ts";
import type { RfbParser } from "./parser.ts";
import type { ServerHandshakePhase, TrackerState } from "./state.ts";

/** One decision with the phase's header complete. Returns true at the end of a server message. */
export function serverMessageStep(parser: RfbParser): boolean {
  const st = parser.st;
  const d = st.server;
  const b = parser.head;
  const o = parser.headAt;
  const p = d.phase;
  // The most frequent phases first: a switch on strings tests its cases in order.
  switch (p) {
    case "rectHeader":
      return rectHeader(parser);
    case "rectEnd":
      if (st.rectsLeft === 0) return messageDone(parser);
      parser.setServerPhase("rectHeader", 12);
      return false;
    case "tightControl":
      return tight(parser);
    case "tightData":
      if (st.tightDataBytes === 0) parser.setServerPhase("rectEnd", 0);
      else if (st.tightDataBytes < 12) {
        d.body = st.tightDataBytes; // short data is sent raw, without a length
        parser.setServerPhase("rectEnd", 0);
      } else parser.setServerPhase("tightLength", 1);
      return false;
    case "tightLength": {
      // Tight compact length: 1 to 3 bytes, 7 + 7 + 8 bits.
      const n = parser.headLength;
      if (n === 1 && b[o]! & 0x80) return parser.more(2);
      if (n === 2 && b[o + 1]! & 0x80) return parser.more(3);
      let len = b[o]! & 0x7f;
      if (n > 1) len |= (b[o + 1]! & 0x7f) << 7;
      if (n > 2) len |= b[o + 2]! << 14;
      return rectBody(parser, len);
    }
    case "message":
      return serverMessage(parser);
    case "hextileTile":
      return hextile(parser);
    case "hextileNext": {
      st.tileIndex++;
      const tiles = Math.ceil(st.rectWidth / 16) * Math.ceil(st.rectHeight / 16);
      if (st.tileIndex < tiles) parser.setServerPhase("hextileTile", 1);
      else parser.setServerPhase("rectEnd", 0);
      return false;
    }
    case "messageEnd":
      return messageDone(parser);
    case "rectLength": // zlib, ZRLE, DesktopName
    case "h264Header": // length, then flags
      return rectBody(parser, u32(b, o));
    case "rreHeader":
      return rectBody(parser, u32(b, o) * (st.bytesPerPixel + 8));
    case "desktopSizeHeader":
      return rectBody(parser, 16 * b[o]!);
    case "vmwareCursor":
      if (b[o] === 0) return rectBody(parser, 2 * st.rectWidth * st.rectHeight * st.bytesPerPixel);
      if (b[o] === 1) return rectBody(parser, st.rectWidth * st.rectHeight * 4);
      throw new Unframeable(`VMware cursor type ${b[o]}`);
    default:
      return handshakePhase(p);
  }
}

/** Handshake phases are handshake.ts's (a phase missing from both switches does not compile). */
function handshakePhase(p: ServerHandshakePhase): never {
  throw new Unframeable(`parser phase ${p}`);
}

/** Applies a pixel format (ServerInit's or the viewer's SetPixelFormat) at `b[at]`. */
export function setPixelFormat(st: TrackerState, b: ArrayLike<number>, at: number): void {
  const bpp = b[at]!;
  const depth = b[at + 1]!;
  const trueColour = b[at + 3] !== 0;
  if (bpp !== 8 && bpp !== 16 && bpp !== 32) throw new Unframeable(`${bpp} bits per pixel`);
  st.bytesPerPixel = bpp / 8;
  // Tight's TPIXEL: 3 bytes for 32 bpp depth 24 true colour with 8-bit channels.
  const eight = u16(b, at + 4) === 255 && u16(b, at + 6) === 255 && u16(b, at + 8) === 255;
  st.tightPixelBytes = trueColour && bpp === 32 && depth === 24 && eight ? 3 : bpp / 8;
}

function serverMessage(parser: RfbParser): boolean {
  const st = parser.st;
  const b = parser.head;
  const o = parser.headAt;
  switch (b[o]) {
    case 0: // FramebufferUpdate
      if (needs(parser, 4)) return false;
      st.rectsLeft = u16(b, o + 2);
      if (st.rectsLeft === 0) return messageDone(parser);
      parser.setServerPhase("rectHeader", 12);
      return false;
    case 1: // SetColourMapEntries
      if (needs(parser, 6)) return false;
      return messageBody(parser, 6 * u16(b, o + 4));
    case 2: // Bell
    case 150: // EndOfContinuousUpdates
      return messageDone(parser);
    case 3: // ServerCutText (negative length: extended clipboard)
      if (needs(parser, 8)) return false;
      return messageBody(parser, Math.abs(s32(b, o + 4)));
    case 248: // ServerFence
      if (needs(parser, 9)) return false;
      return messageBody(parser, b[o + 8]!);
    case 250: // xvp
      if (needs(parser, 4)) return false;
      return messageDone(parser);
    case 255: // QEMU: only audio (submessage 1) exists
      if (needs(parser, 2)) return false;
      if (b[o + 1] !== 1) throw new Unframeable(`QEMU server message ${b[o + 1]}`);
      if (needs(parser, 4)) return false;
      if (u16(b, o + 2) === 0 || u16(b, o + 2) === 1) return messageDone(parser);
      if (u16(b, o + 2) !== 2) throw new Unframeable(`QEMU audio operation ${u16(b, o + 2)}`);
      if (needs(parser, 8)) return false;
      return messageBody(parser, u32(b, o + 4));
  }
  throw new Unframeable(`server message type ${b[o]}`);
}

/** The server message's header needs `n` bytes: true (and waits for them) when it has fewer. */
function needs(parser: RfbParser, n: number): boolean {
  if (parser.headLength >= n) return false;
  parser.more(n);
  return true;
}

function messageDone(parser: RfbParser): true {
  parser.setServerPhase("message", 1);
  return true;
}

/** The message's body is `n` bytes that stream through. */
function messageBody(parser: RfbParser, n: number): false {
  parser.st.server.body = n;
  parser.setServerPhase("messageEnd", 0);
  return false;
}

/** The current rectangle's body is `n` bytes that stream through. */
function rectBody(parser: RfbParser, n: number): false {
  parser.st.server.body = n;
  parser.setServerPhase("rectEnd", 0);
  return false;
}

function rectHeader(parser: RfbParser): boolean {
  const st = parser.st;
  const b = parser.head;
  const o = parser.headAt;
  const w = u16(b, o + 4);
  const h = u16(b, o + 6);
  const enc = s32(b, o + 8);
  const bpp = st.bytesPerPixel;
  st.rectsLeft--;
  st.rectWidth = w;
  st.rectHeight = h;
  switch (enc) {
    case 0: // Raw
      return rectBody(parser, w * h * bpp);
    case 1: // CopyRect
      return rectBody(parser, 4);
    case 2: // RRE
      parser.setServerPhase("rreHeader", 4 + bpp);
      return false;
    case 5: // Hextile
      st.tileIndex = 0;
      if (w === 0 || h === 0) return rectBody(parser, 0);
      parser.setServerPhase("hextileTile", 1);
      return false;
    case 6: // zlib
    case 16: // ZRLE
    case -307: // DesktopName
      parser.setServerPhase("rectLength", 4);
      return false;
    case 7: // Tight
    case -260: // TightPNG
      parser.setServerPhase("tightControl", 1);
      return false;
    case 50: // Open H.264
      parser.setServerPhase("h264Header", 8);
      return false;
    case -239: // Cursor: pixels then bitmask
      return rectBody(parser, w * h * bpp + Math.floor((w + 7) / 8) * h);
    case -240: // XCursor: colours, bitmap, bitmask
      return rectBody(parser, w === 0 || h === 0 ? 0 : 6 + 2 * Math.floor((w + 7) / 8) * h);
    case -224: // LastRect
      st.rectsLeft = 0;
      return rectBody(parser, 0);
    case -308: // ExtendedDesktopSize
      parser.setServerPhase("desktopSizeHeader", 4);
      return false;
    case -261: // QEMU LED state
      return rectBody(parser, 1);
    case ENC_EXT_MOUSE:
      st.serverExtMouse = true; // the server confirmed: PointerEvents with bit 7 set are now 7 bytes
      return rectBody(parser, 0);
    case -223: // DesktopSize
    case -257:
    case -258:
    case -259:
    case -312:
    case -313:
      return rectBody(parser, 0);
    case ENC_VMWARE_CURSOR:
      parser.setServerPhase("vmwareCursor", 2);
      return false;
  }
  throw new Unframeable(`rectangle encoding ${enc}`);
}

function hextile(parser: RfbParser): boolean {
  const st = parser.st;
  const d = st.server;
  const b = parser.head;
  const o = parser.headAt;
  const bpp = st.bytesPerPixel;
  const sub = b[o]!;
  if (sub & 0xe0) throw new Unframeable(`Hextile subencoding ${sub}`);
  const cols = Math.ceil(st.rectWidth / 16);
  const col = st.tileIndex % cols;
  const row = Math.floor(st.tileIndex / cols);
  const tw = Math.min(16, st.rectWidth - col * 16);
  const th = Math.min(16, st.rectHeight - row * 16);
  if (sub & 1) {
    d.body = tw * th * bpp; // Raw tile: the other bits do not apply
    parser.setServerPhase("hextileNext", 0);
    return false;
  }
  // Background, foreground, subrectangle count: each present if its bit says so.
  const header = 1 + (sub & 2 ? bpp : 0) + (sub & 4 ? bpp : 0) + (sub & 8 ? 1 : 0);
  if (parser.headLength < header) return parser.more(header);
  if (sub & 8) d.body = b[o + header - 1]! * (sub & 16 ? bpp + 2 : 2);
  parser.setServerPhase("hextileNext", 0);
  return false;
}

function tight(parser: RfbParser): boolean {
  const st = parser.st;
  const d = st.server;
  const b = parser.head;
  const o = parser.headAt;
  const kind = b[o]! >> 4;
  if (kind === 8) return rectBody(parser, st.tightPixelBytes); // FillCompression: one TPIXEL
  if (kind === 9 || kind === 10) {
    parser.setServerPhase("tightLength", 1); // JPEG, PNG
    return false;
  }
  if (kind & 8) throw new Unframeable(`Tight compression ${kind}`);
  // BasicCompression: bit 6 says a filter id follows.
  let filter = 0;
  if (kind & 4) {
    if (parser.headLength < 2) return parser.more(2);
    filter = b[o + 1]!;
  }
  if (filter === 0 || filter === 2) {
    st.tightDataBytes = st.rectWidth * st.rectHeight * st.tightPixelBytes;
    parser.setServerPhase("tightData", 0);
    return false;
  }
  if (filter !== 1) throw new Unframeable(`Tight filter ${filter}`);
  if (parser.headLength < 3) return parser.more(3);
  const colours = b[o + 2]! + 1;
  const rowBytes = colours <= 2 ? Math.floor((st.rectWidth + 7) / 8) : st.rectWidth;
  st.tightDataBytes = rowBytes * st.rectHeight;
  d.body = colours * st.tightPixelBytes; // the palette
  parser.setServerPhase("tightData", 0);
  return false;
}
