/**
 * RfbTracker: follows one console's RFB stream in both directions, byte by byte, without ever
 * holding a large message. It
 *  - tracks the handshake (RFB 3.3 / 3.7 / 3.8, security None and VNC auth, failures) and closes
 *    any viewer that chooses a security type the server did not offer,
 *  - enforces view-only on the viewer → console direction (ClientInit shared flag forced to 1,
 *    only display requests pass, input is dropped silently, anything unframeable closes),
 *  - frames every console → viewer message after ServerInit (so it knows message boundaries),
 *  - when asked (fenceCredit), injects its own ServerFence requests at message boundaries and
 *    removes the viewer's answers, which prove how much of the console's output the viewer has
 *    processed: a credit signal for viewers that cannot return credit any other way.
 *
 * Pure: no I/O, no Workers APIs (only crypto.getRandomValues for fence nonces). All state is in
 * one plain object (`snapshot()`), small and JSON-safe, so a stream can resume after the Durable
 * Object hibernates, at any byte.
 *
 * Bounds: a direction never holds more than MAX_HEADER bytes of an unfinished message header plus,
 * during the handshake only, MAX_HELD bytes that cannot be parsed before the other direction says
 * how (RFB 3.3 ClientInit pipelined before the server's security type). Message bodies (pixel data,
 * clipboard texts, encoding lists) stream through and are counted, never stored.
 *
 * Fences (mode.fenceCredit, once the viewer's SetEncodings listed the Fence pseudo-encoding -312):
 * a ServerFence with flags = Request only and an 8-byte payload, FENCE_TAG + a random u32 nonce, is
 * injected at the last message boundary of every fromServer chunk that has unfenced bytes before
 * it (so every update is followed by one and an idle screen settles), and nowhere else: a chunk
 * goes to the viewer as one WebSocket message, processed in one go, so one fence proves as much
 * as several would. noVNC answers a fence request as soon as it parses it, with the
 * flags masked to BlockBefore|BlockAfter (0 here) and the payload echoed; it fails on a fence
 * without the Request flag, and uses a fence for nothing else. A viewer's ClientFence without the
 * Request flag, 8 bytes long and carrying our tag, is removed from the stream (the server never
 * sent it); if its nonce is one we remember, everything fromServer returned up to and including
 * that fence is proven processed. The nonce is random so a viewer cannot answer a fence it has not
 * read. The server's own fences (TigerVNC uses 1-byte payloads) and the viewer's answers to them
 * pass untouched, as do the viewer's own fence requests.
 *
 * Facts: /work/shared/reference/rfb-view-only.md, RFC 6143, rfbproto.rst (community spec),
 * noVNC 1.7 core/rfb.js and core/decoders/*.js for what a real client does.
 */
import { CloseCode } from "../../../shared/protocol/close-codes.ts";
import { concatBytes } from "../../../shared/protocol/frames.ts";
import { STREAM_WINDOW_BYTES } from "../../../shared/protocol/limits.ts";
import { StreamFault } from "../stream-fault.ts";

/**
 * viewOnly: filter the viewer's input. fenceCredit: inject fences (plain viewers). watchInput:
 * count the viewer's input messages (the edge's idle timeout) even when neither of the others
 * needs the viewer's messages parsed.
 */
export type Mode = { viewOnly: boolean; fenceCredit: boolean; watchInput?: boolean };

/** Largest header a direction accumulates before deciding (ServerInit's fixed part). */
export const MAX_HEADER = 24;
/** Bytes one direction may hold during the handshake while waiting for the other direction. */
export const MAX_HELD = 64;
/** Outstanding fences remembered, at least FENCE_SPACING_BYTES apart: together a stream window. */
export const MAX_OUTSTANDING_FENCES = 8;
export const FENCE_SPACING_BYTES = STREAM_WINDOW_BYTES / MAX_OUTSTANDING_FENCES;
/** First 4 payload bytes of our fences. Its first byte is neither 0 nor 1, the payload types
 *  TigerVNC gives its own fences, should one of our answers ever reach a server. */
export const FENCE_TAG = [0x50, 0x48, 0x46, 0x31] as const; // "PHF1"

const FENCE_REQUEST = 0x80000000;
/** Body length for "pass everything from here on" (finite: the state must survive JSON). */
const FOREVER = Number.MAX_SAFE_INTEGER;

/** Encodings the server direction can frame, so they may stay in a rewritten SetEncodings. */
const FRAMEABLE = new Set<number>([
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
  -312, // Fence (server message 248)
  -313, // ContinuousUpdates (server message 150)
  -316, // ExtendedMouseButtons (empty rect)
  0x574d5664, // VMware cursor
  0xc0a1e5ce | 0, // Extended clipboard (ServerCutText with a negative length)
]);
/** Pseudo-encodings that only tune the encoder and never produce rectangles. */
function isTuning(enc: number): boolean {
  return (
    (enc >= -32 && enc <= -23) || // JPEG quality
    (enc >= -256 && enc <= -247) || // compression level
    (enc >= -512 && enc <= -412) || // JPEG fine-grained quality
    (enc >= -768 && enc <= -763) // JPEG subsampling
  );
}
const ENC_FENCE = -312;
const ENC_EXT_MOUSE = -316;
const ENC_VMWARE_CURSOR = 0x574d5664;

/** One direction's parser position. */
interface Dir {
  /** Phase name (see parseServer / parseClient). */
  p: string;
  /** Header bytes the phase needs before it can decide. */
  n: number;
  /** Header bytes received so far (<= MAX_HEADER). */
  b: number[];
  /** Body bytes still to stream through (client: passed if `f`, dropped otherwise). */
  r: number;
  f: boolean;
  /** Handshake bytes waiting for the other direction (<= MAX_HELD). */
  h: number[];
}

/** The parser state, as the tracker works on it. */
interface State {
  v: 1;
  c: Dir;
  s: Dir;
  /** RFB minor version chosen by the client (3, 7, 8), 0 before. */
  ver: number;
  /** Security type: chosen by the client (3.7+) or the server (3.3); -1 before. */
  sec: number;
  /**
   * RFB 3.7+: the types the server offered, a 256-bit set as 8 u32 words, once its whole list was
   * read; `ol` the list's types still to read. The viewer may choose only these. Present only
   * between the server's list and the viewer's choice.
   */
  ot?: number[];
  ol?: number;
  done: boolean;
  lost: boolean;
  /** Bits per pixel and Tight pixel size of the current pixel format. */
  bpp: number;
  tp: number;
  /** The viewer's last SetEncodings listed Fence / ExtendedMouseButtons; the server confirmed the latter. */
  cf: boolean;
  cm: boolean;
  sm: boolean;
  /** SetEncodings rewrite in progress: encodings left, last kept, removed not yet replaced, flags seen. */
  el: number;
  ek: number | null;
  er: number;
  ef: boolean;
  eM: boolean;
  /** Server framebuffer update: rectangles left, current rectangle size and encoding, tile index, Tight size. */
  rl: number;
  rw: number;
  rh: number;
  re: number;
  ti: number;
  ts: number;
  /** Bytes returned by fromServer / received by fromServer; where the last fence ended (returned). */
  out: number;
  inp: number;
  lf: number;
  /** Bytes already reported consumed (returned, input). */
  ack: number;
  ackIn: number;
  /** Input position of the last server message boundary. */
  mb: number;
  /** Outstanding fences: [nonce, returned position after it, input position]. */
  fences: [number, number, number][];
  /** Viewer bytes released by server data, for takeHeldForServer(). */
  hs: number[];
  /** Input messages the viewer sent (keys, pointer, clipboard, QEMU keys), passed or dropped. */
  in?: number;
  /** Console messages are not framed, by choice (only the viewer's input is watched). */
  sp?: boolean;
}

/** A direction in the snapshot: byte buffers as hex. */
type DirJson = Omit<Dir, "b" | "h"> & { b: string; h: string };

/**
 * Everything needed to continue after hibernation: plain JSON, under 1 KiB even with every buffer
 * full and every counter at its largest (see the tests). Byte buffers are hex strings.
 */
export type RfbTrackerState = Omit<State, "c" | "s" | "hs"> & { c: DirJson; s: DirJson; hs: string };

function hex(bytes: number[]): string {
  let out = "";
  for (const b of bytes) out += (b < 16 ? "0" : "") + b.toString(16);
  return out;
}
function unhex(text: unknown, max: number): number[] {
  if (typeof text !== "string" || text.length > 2 * max || !/^(?:[0-9a-f]{2})*$/.test(text)) throw badState();
  const out: number[] = [];
  for (let i = 0; i < text.length; i += 2) out.push(parseInt(text.slice(i, i + 2), 16));
  return out;
}
function badState(): StreamFault {
  return new StreamFault(CloseCode.internal, "The console was interrupted: open it again.");
}
function dirToJson(d: Dir): DirJson {
  return { ...d, b: hex(d.b), h: hex(d.h) };
}
function dirFromJson(d: DirJson): Dir {
  if (typeof d !== "object" || d === null || typeof d.p !== "string") throw badState();
  return { ...d, b: unhex(d.b, MAX_HEADER), h: unhex(d.h, MAX_HELD) };
}

function newDir(p: string, n: number): Dir {
  return { p, n, b: [], r: 0, f: true, h: [] };
}

function u16(b: ArrayLike<number>, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}
function u32(b: ArrayLike<number>, at: number): number {
  return ((b[at]! << 24) >>> 0) + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}
function s32(b: ArrayLike<number>, at: number): number {
  return u32(b, at) | 0;
}

/** The viewer chose a security type the server did not offer (or chose before any offer). */
function notOffered(type: number, listed: boolean): StreamFault {
  return new StreamFault(
    CloseCode.badRequest,
    listed ? `Console closed: the viewer chose security type ${type}, which the VNC server did not offer.` : "Console closed: the viewer chose a security type before the VNC server offered any.",
  );
}

function viewOnlyFault(what: string): StreamFault {
  return new StreamFault(CloseCode.badRequest, `View-only console closed: ${what}.`);
}

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

/** Signals "cannot frame": caught by the parse loops, turned into a fault or framing = lost. */
class Unframeable extends Error {}

export class RfbTracker {
  private readonly mode: Mode;
  private st: State;
  private isDirty = false;
  /**
   * The header a console-direction step reads: `hb[ho]` to `hb[ho + hl - 1]`. Either the bytes
   * collected in `st.s.b` (a header split across chunks) or, most of the time, the input itself:
   * a header whole in the input is read where it lies, never copied (see parseServer).
   */
  private hb: ArrayLike<number> = [];
  private ho = 0;
  private hl = 0;
  /** A step found that its header is longer than it had (st.s.n was raised). */
  private wantMore = false;
  /** Where the last server message ended in the current fromServer input (-1: none). */
  private lastBoundary = -1;
  /** Pieces being produced by the current fromViewer / release. */
  private cOut: Uint8Array[] = [];

  constructor(mode: Mode, state?: RfbTrackerState) {
    this.mode = mode;
    if (state) {
      // Our own snapshot, from storage: checked for shape and buffer bounds, not trusted blindly.
      if (typeof state !== "object" || state === null || state.v !== 1 || !Array.isArray(state.fences)) throw badState();
      const { c, s, hs, fences, ...rest } = state;
      if (rest.ot !== undefined && !(Array.isArray(rest.ot) && rest.ot.length === 8 && rest.ot.every((w) => Number.isInteger(w)))) throw badState();
      this.st = {
        ...rest,
        c: dirFromJson(c),
        s: dirFromJson(s),
        hs: unhex(hs, MAX_HELD + MAX_HEADER),
        fences: fences.slice(0, MAX_OUTSTANDING_FENCES).map((f): [number, number, number] => [Number(f[0]), Number(f[1]), Number(f[2])]),
      };
    } else {
      this.st = {
        v: 1,
        c: newDir("ver", 12),
        s: newDir("ver", 12),
        ver: 0,
        sec: -1,
        done: false,
        lost: false,
        bpp: 0,
        tp: 0,
        cf: false,
        cm: false,
        sm: false,
        el: 0,
        ek: null,
        er: 0,
        ef: false,
        eM: false,
        rl: 0,
        rw: 0,
        rh: 0,
        re: 0,
        ti: 0,
        ts: 0,
        out: 0,
        inp: 0,
        lf: 0,
        ack: 0,
        ackIn: 0,
        mb: 0,
        fences: [],
        hs: [],
      };
    }
  }

  /** Input messages the viewer has sent so far (counted when the viewer's messages are parsed). */
  get inputs(): number {
    return this.st.in ?? 0;
  }

  /** The viewer's input is being counted (watched, and its messages still framed). */
  get inputWatched(): boolean {
    return (this.mode.watchInput === true || this.mode.viewOnly || this.mode.fenceCredit) && !this.st.lost;
  }

  /** ServerInit has passed. */
  get handshakeDone(): boolean {
    return this.st.done;
  }

  /**
   * "exact" while both directions are framed. "lost" after an unframeable message or security type
   * (only possible when not view-only: view-only throws instead), and also once the handshake is
   * done when neither view-only nor fence credit needs framing (nothing is tracked then).
   */
  get framing(): "exact" | "lost" {
    return this.st.lost || this.st.sp ? "lost" : "exact";
  }

  /** Fences are being injected: fence credit is on, the viewer announced -312, framing is exact. */
  get fenceCreditActive(): boolean {
    return this.fencing();
  }

  /**
   * Console bytes of the server message in progress (0 between messages). No fence can prove these
   * before the message ends: a message larger than the stream window needs the caller to grant
   * credit for them some other way (e.g. as forwarded, under the plain-viewer silence limit).
   */
  get inMessageBytes(): number {
    return this.st.done && !this.st.lost && !this.st.sp ? this.st.inp - this.st.mb : 0;
  }

  /** Bytes returned by fromServer that no answered fence covers yet. */
  get unconfirmed(): number {
    return this.st.out - this.st.ack;
  }

  /** The state changed since clearDirty() (any call that took bytes in changes it). */
  get dirty(): boolean {
    return this.isDirty;
  }
  clearDirty(): void {
    this.isDirty = false;
  }

  snapshot(): RfbTrackerState {
    const { c, s, hs, fences, ...rest } = this.st;
    return { ...rest, c: dirToJson(c), s: dirToJson(s), hs: hex(hs), fences: fences.map((f): [number, number, number] => [f[0], f[1], f[2]]) };
  }

  /**
   * Viewer bytes that were held during the handshake and became sendable because of server bytes
   * (RFB 3.3: the viewer's ClientInit may arrive before the server's security type). Call after
   * every fromServer; null when there is nothing.
   */
  takeHeldForServer(): Uint8Array | null {
    if (this.st.hs.length === 0) return null;
    const bytes = Uint8Array.from(this.st.hs);
    this.st.hs = [];
    this.isDirty = true;
    return bytes;
  }

  // ---------------------------------------------------------------- console → viewer

  /**
   * Console → viewer bytes. Returns what to send to the viewer, in order: the input (as subarrays,
   * never copied) with our ServerFence messages between messages when one is due. Then call
   * takeHeldForServer(). Throws StreamFault only when view-only and the stream cannot be framed.
   */
  fromServer(bytes: Uint8Array): Uint8Array[] {
    if (bytes.length === 0) return [];
    this.isDirty = true;
    const st = this.st;
    if (st.lost || st.sp) {
      st.out += bytes.length;
      st.inp += bytes.length;
      return [bytes];
    }
    this.lastBoundary = -1;
    this.parseServer(bytes, 0);
    const lastBoundary = this.lastBoundary;
    if (lastBoundary >= 0) st.mb = st.inp + lastBoundary;
    // One fence per chunk, at its last message boundary (if anything before it is unfenced):
    // every update is followed by one, and an idle screen settles. More fences inside one chunk
    // would prove nothing more: the chunk reaches the viewer as one WebSocket message, which a
    // viewer processes, and answers the fences in, in one go; each fence would only cost the
    // viewer an answer and the edge a billed incoming message.
    if (this.fencing() && lastBoundary >= 0 && st.out + lastBoundary > st.lf) {
      const before = bytes.subarray(0, lastBoundary);
      st.out += lastBoundary;
      st.inp += lastBoundary;
      const fence = this.makeFence();
      const rest = bytes.length - lastBoundary;
      st.out += rest;
      st.inp += rest;
      if (lastBoundary === 0) return [fence, bytes];
      return rest === 0 ? [before, fence] : [before, fence, bytes.subarray(lastBoundary)];
    }
    st.out += bytes.length;
    st.inp += bytes.length;
    return [bytes];
  }

  private fencing(): boolean {
    return this.mode.fenceCredit && this.st.cf && this.st.done && !this.st.lost;
  }

  private makeFence(): Uint8Array {
    const st = this.st;
    const nonce = nextNonce();
    const fence = new Uint8Array(17);
    const view = new DataView(fence.buffer);
    fence[0] = 248;
    view.setUint32(4, FENCE_REQUEST);
    fence[8] = 8;
    fence.set(FENCE_TAG, 9);
    view.setUint32(13, nonce);
    st.out += fence.length;
    st.lf = st.out;
    // Remembered fences are kept FENCE_SPACING_BYTES apart (except the newest), so the few the state
    // holds cover a whole stream window: a newer fence replaces a newest one that is too close to
    // its predecessor (the replaced one's answer then earns nothing; the newer one covers it).
    const f = st.fences;
    const last = f.at(-1);
    const before = f.length >= 2 ? f[f.length - 2]![1] : st.ack;
    if (last && last[1] - before < FENCE_SPACING_BYTES) f[f.length - 1] = [nonce, st.out, st.inp];
    else f.push([nonce, st.out, st.inp]);
    if (f.length > MAX_OUTSTANDING_FENCES) f.shift();
    return fence;
  }

  /** Parses server bytes from `at`; output is always the input itself, so nothing is produced here. */
  private parseServer(input: Uint8Array, at: number): void {
    const st = this.st;
    const d = st.s;
    let i = at;
    try {
      for (;;) {
        if (st.lost || st.sp) return;
        if (d.r > 0) {
          const n = Math.min(d.r, input.length - i);
          d.r -= n;
          i += n;
          if (d.r > 0) return;
        }
        if (this.serverWaits()) {
          // Nothing the server sends here can be parsed before the viewer's choice is known.
          if (d.h.length + input.length - i > MAX_HELD) throw new Unframeable("console data before the viewer's answer");
          for (; i < input.length; i++) d.h.push(input[i]!);
          return;
        }
        if (st.done && d.b.length === 0 && input.length - i >= d.n) {
          // The whole header is in the input: read it there. A step that finds it needs more
          // reads on in place while the input has it, and otherwise keeps what it has in d.b.
          this.hb = input;
          this.ho = i;
          for (;;) {
            this.hl = d.n;
            const end = this.serverStep();
            if (!this.wantMore) {
              i = this.ho + this.hl;
              if (end) this.lastBoundary = i;
              break;
            }
            this.wantMore = false;
            if (input.length - this.ho < d.n) {
              for (let k = 0; k < this.hl; k++) d.b.push(input[this.ho + k]!);
              i = this.ho + this.hl;
              break;
            }
          }
          continue;
        }
        while (d.b.length < d.n && i < input.length) d.b.push(input[i++]!);
        if (d.b.length < d.n) return;
        this.hb = d.b;
        this.ho = 0;
        this.hl = d.b.length;
        this.wantMore = false;
        if (this.serverStep()) this.lastBoundary = i;
      }
    } catch (e) {
      if (!(e instanceof Unframeable)) throw e;
      this.lose(e.message);
      // Not view-only: viewer bytes held back (handshake, or a partial message header) go on
      // untouched, ahead of anything the viewer sends next.
      const c = st.c;
      st.hs.push(...c.h, ...c.b);
      c.h = [];
      c.b = [];
    }
  }

  private serverWaits(): boolean {
    const p = this.st.s.p;
    return (p === "wver" && this.st.ver === 0) || (p === "wsec" && this.st.sec < 0);
  }

  /** After the viewer said something a waiting server parse needs: parse what the server sent meanwhile. */
  private resumeServer(): void {
    const d = this.st.s;
    if ((d.p !== "wver" && d.p !== "wsec") || this.serverWaits()) return;
    const held = Uint8Array.from(d.h);
    d.h = [];
    this.parseServer(held, 0);
  }

  /** Leaves a waiting phase once what it waited for is known. */
  private serverAdvanceWait(): void {
    const st = this.st;
    const d = st.s;
    if (d.p === "wver" && st.ver !== 0) {
      if (st.ver === 3) this.sset("sec33", 4);
      else this.sset("list", 1);
    }
    if (d.p === "wsec" && st.sec >= 0) {
      if (st.sec === 1) {
        if (st.ver === 8) this.sset("result", 4);
        else this.sset("init", 24);
      } else if (st.sec === 2) {
        this.sset("result", 4);
        d.r = 16; // challenge
      } else {
        throw new Unframeable(`security type ${st.sec} cannot be inspected`);
      }
    }
  }

  private sset(p: string, n: number): void {
    const d = this.st.s;
    d.p = p;
    d.n = n;
    if (d.b.length !== 0) d.b = [];
  }

  /** The current step's header is longer than it had: wait for `n` bytes in all. */
  private more(n: number): false {
    this.st.s.n = n;
    this.wantMore = true;
    return false;
  }

  /** One decision with d.b complete (length d.n). Returns true at the end of a server message. */
  private serverStep(): boolean {
    const st = this.st;
    const d = st.s;
    const b = this.hb;
    const o = this.ho;
    // The phases of messages first: a switch on strings tests its cases in order.
    switch (d.p) {
      // ---- messages
      case "rect":
        return this.rectHeader();
      case "rend":
        if (st.rl === 0) {
          this.sset("msg", 1);
          return true;
        }
        this.sset("rect", 12);
        return false;
      case "tight":
        return this.tight();
      case "tdata":
        if (st.ts === 0) this.sset("rend", 0);
        else if (st.ts < 12) {
          d.r = st.ts;
          this.sset("rend", 0);
        } else this.sset("clen", 1);
        return false;
      case "clen": {
        // Tight compact length: 1 to 3 bytes, 7 + 7 + 8 bits.
        const n = this.hl;
        if (n === 1 && b[o]! & 0x80) return this.more(2);
        if (n === 2 && b[o + 1]! & 0x80) return this.more(3);
        let len = b[o]! & 0x7f;
        if (n > 1) len |= (b[o + 1]! & 0x7f) << 7;
        if (n > 2) len |= b[o + 2]! << 14;
        d.r = len;
        this.sset("rend", 0);
        return false;
      }
      case "msg":
        return this.serverMessage();
      case "hex":
        return this.hextile();
      case "hexnext": {
        st.ti++;
        const tiles = Math.ceil(st.rw / 16) * Math.ceil(st.rh / 16);
        if (st.ti < tiles) this.sset("hex", 1);
        else this.sset("rend", 0);
        return false;
      }
      case "mend":
        this.sset("msg", 1);
        return true;
      case "len32": // zlib, ZRLE, DesktopName
        d.r = u32(b, o);
        this.sset("rend", 0);
        return false;
      case "h264":
        d.r = u32(b, o);
        this.sset("rend", 0);
        return false;
      case "rre":
        d.r = u32(b, o) * (st.bpp + 8);
        this.sset("rend", 0);
        return false;
      case "eds":
        d.r = 16 * b[o]!;
        this.sset("rend", 0);
        return false;
      case "vmc":
        if (b[o] === 0) d.r = 2 * st.rw * st.rh * st.bpp;
        else if (b[o] === 1) d.r = st.rw * st.rh * 4;
        else throw new Unframeable(`VMware cursor type ${b[o]}`);
        this.sset("rend", 0);
        return false;
      // ---- handshake (before ServerInit: headers are always collected in d.b, so o is 0)
      case "ver": {
        const text = String.fromCharCode(...d.b);
        if (!/^RFB \d{3}\.\d{3}\n$/.test(text)) throw new Unframeable("not an RFB server");
        this.sset("wver", 0);
        return false;
      }
      case "wver":
      case "wsec": {
        this.serverAdvanceWait();
        return false;
      }
      case "sec33": {
        const type = u32(b, 0);
        st.sec = type;
        if (type === 0) this.sset("reason", 4);
        else if (type === 1) this.sset("init", 24);
        else if (type === 2) {
          this.sset("result", 4);
          d.r = 16;
        } else throw new Unframeable(`security type ${type} cannot be inspected`);
        this.resumeClient();
        return false;
      }
      case "list":
        if (b[0] === 0) this.sset("reason", 4);
        else {
          // The offered types, one at a time: the viewer's choice is checked against them.
          st.ot = [0, 0, 0, 0, 0, 0, 0, 0];
          st.ol = b[0]!;
          this.sset("type", 1);
        }
        return false;
      case "type": {
        const words = st.ot!;
        words[b[0]! >> 5] = (words[b[0]! >> 5]! | (1 << (b[0]! & 31))) >>> 0;
        st.ol = st.ol! - 1;
        this.sset(st.ol > 0 ? "type" : "wsec", st.ol > 0 ? 1 : 0);
        return false;
      }
      case "result":
        if (u32(b, 0) === 0) this.sset("init", 24);
        else if (st.ver === 8) this.sset("reason", 4);
        else this.sset("failed", 0);
        return false;
      case "reason":
        d.r = u32(b, 0);
        this.sset("failed", 0);
        return false;
      case "failed": {
        // The server closes after a failure: whatever else it sends is passed and not parsed, and
        // a viewer that did not notice sends nothing more that needs inspecting.
        d.r = FOREVER;
        const c = st.c;
        if ((c.p === "choice" || c.p === "init") && c.r === 0) {
          c.p = "failed";
          c.n = 0;
          c.b = [];
        }
        return false;
      }
      case "init":
        // A viewer may send SetPixelFormat before ServerInit reaches it: the server applies it after.
        if (st.bpp === 0) this.setPixelFormat(b, 4);
        d.r = u32(b, 20); // name
        this.sset("inited", 0);
        return false;
      case "inited":
        st.done = true;
        if (!this.mode.viewOnly && !this.mode.fenceCredit) {
          // Nothing needs the console's messages framed: stop parsing them. Without watchInput
          // nothing needs the viewer's either, which is "lost" by another name.
          if (this.mode.watchInput) st.sp = true;
          else st.lost = true;
          return false;
        }
        this.sset("msg", 1);
        return false;
    }
    throw new Unframeable(`parser phase ${d.p}`);
  }

  private setPixelFormat(b: ArrayLike<number>, at: number): void {
    const bpp = b[at]!;
    const depth = b[at + 1]!;
    const trueColour = b[at + 3] !== 0;
    if (bpp !== 8 && bpp !== 16 && bpp !== 32) throw new Unframeable(`${bpp} bits per pixel`);
    this.st.bpp = bpp / 8;
    // Tight's TPIXEL: 3 bytes for 32 bpp depth 24 true colour with 8-bit channels.
    const eight = u16(b, at + 4) === 255 && u16(b, at + 6) === 255 && u16(b, at + 8) === 255;
    this.st.tp = trueColour && bpp === 32 && depth === 24 && eight ? 3 : bpp / 8;
  }

  private serverMessage(): boolean {
    const st = this.st;
    const d = st.s;
    const b = this.hb;
    const o = this.ho;
    switch (b[o]) {
      case 0: // FramebufferUpdate
        if (this.sneed(4)) return false;
        st.rl = u16(b, o + 2);
        if (st.rl === 0) return this.smsgDone();
        this.sset("rect", 12);
        return false;
      case 1: // SetColourMapEntries
        if (this.sneed(6)) return false;
        d.r = 6 * u16(b, o + 4);
        this.sset("mend", 0);
        return false;
      case 2: // Bell
      case 150: // EndOfContinuousUpdates
        return this.smsgDone();
      case 3: // ServerCutText (negative length: extended clipboard)
        if (this.sneed(8)) return false;
        d.r = Math.abs(s32(b, o + 4));
        this.sset("mend", 0);
        return false;
      case 248: // ServerFence
        if (this.sneed(9)) return false;
        d.r = b[o + 8]!;
        this.sset("mend", 0);
        return false;
      case 250: // xvp
        if (this.sneed(4)) return false;
        return this.smsgDone();
      case 255: // QEMU: only audio (submessage 1) exists
        if (this.sneed(2)) return false;
        if (b[o + 1] !== 1) throw new Unframeable(`QEMU server message ${b[o + 1]}`);
        if (this.sneed(4)) return false;
        if (u16(b, o + 2) === 0 || u16(b, o + 2) === 1) return this.smsgDone();
        if (u16(b, o + 2) !== 2) throw new Unframeable(`QEMU audio operation ${u16(b, o + 2)}`);
        if (this.sneed(8)) return false;
        d.r = u32(b, o + 4);
        this.sset("mend", 0);
        return false;
    }
    throw new Unframeable(`server message type ${b[o]}`);
  }

  /** The server message's header needs `n` bytes: true (and waits for them) when it has fewer. */
  private sneed(n: number): boolean {
    if (this.hl >= n) return false;
    this.more(n);
    return true;
  }

  private smsgDone(): boolean {
    this.sset("msg", 1);
    return true;
  }

  private rectHeader(): boolean {
    const st = this.st;
    const b = this.hb;
    const o = this.ho;
    const w = u16(b, o + 4);
    const h = u16(b, o + 6);
    const enc = s32(b, o + 8);
    st.rl--;
    st.rw = w;
    st.rh = h;
    st.re = enc;
    switch (enc) {
      case 0:
        return this.rectBody(w * h * st.bpp);
      case 1:
        return this.rectBody(4);
      case 2:
        this.sset("rre", 4 + st.bpp);
        return false;
      case 5:
        st.ti = 0;
        if (w === 0 || h === 0) return this.rectBody(0);
        this.sset("hex", 1);
        return false;
      case 6:
      case 16:
      case -307:
        this.sset("len32", 4);
        return false;
      case 7:
      case -260:
        this.sset("tight", 1);
        return false;
      case 50:
        this.sset("h264", 8);
        return false;
      case -239: // Cursor: pixels then bitmask
        return this.rectBody(w * h * st.bpp + Math.floor((w + 7) / 8) * h);
      case -240: // XCursor: colours, bitmap, bitmask
        return this.rectBody(w === 0 || h === 0 ? 0 : 6 + 2 * Math.floor((w + 7) / 8) * h);
      case -224: // LastRect
        st.rl = 0;
        return this.rectBody(0);
      case -308:
        this.sset("eds", 4);
        return false;
      case -261: // QEMU LED state
        return this.rectBody(1);
      case ENC_EXT_MOUSE:
        st.sm = true; // the server confirmed: PointerEvents with bit 7 set are now 7 bytes
        return this.rectBody(0);
      case -223: // DesktopSize
      case -257:
      case -258:
      case -259:
      case -312:
      case -313:
        return this.rectBody(0);
      case ENC_VMWARE_CURSOR:
        this.sset("vmc", 2);
        return false;
    }
    throw new Unframeable(`rectangle encoding ${enc}`);
  }

  /** The current rectangle's body is `n` bytes that stream through. */
  private rectBody(n: number): false {
    this.st.s.r = n;
    this.sset("rend", 0);
    return false;
  }

  private hextile(): boolean {
    const st = this.st;
    const d = st.s;
    const b = this.hb;
    const o = this.ho;
    const sub = b[o]!;
    if (sub & 0xe0) throw new Unframeable(`Hextile subencoding ${sub}`);
    const cols = Math.ceil(st.rw / 16);
    const col = st.ti % cols;
    const row = Math.floor(st.ti / cols);
    const tw = Math.min(16, st.rw - col * 16);
    const th = Math.min(16, st.rh - row * 16);
    if (sub & 1) {
      d.r = tw * th * st.bpp; // Raw tile: the other bits do not apply
      this.sset("hexnext", 0);
      return false;
    }
    const header = 1 + (sub & 2 ? st.bpp : 0) + (sub & 4 ? st.bpp : 0) + (sub & 8 ? 1 : 0);
    if (this.hl < header) return this.more(header);
    if (sub & 8) d.r = b[o + header - 1]! * (sub & 16 ? st.bpp + 2 : 2);
    this.sset("hexnext", 0);
    return false;
  }

  private tight(): boolean {
    const st = this.st;
    const d = st.s;
    const b = this.hb;
    const o = this.ho;
    const kind = b[o]! >> 4;
    if (kind === 8) {
      d.r = st.tp; // FillCompression: one TPIXEL
      this.sset("rend", 0);
      return false;
    }
    if (kind === 9 || kind === 10) {
      this.sset("clen", 1); // JPEG, PNG
      return false;
    }
    if (kind & 8) throw new Unframeable(`Tight compression ${kind}`);
    // BasicCompression: bit 6 says a filter id follows.
    let filter = 0;
    if (kind & 4) {
      if (this.hl < 2) return this.more(2);
      filter = b[o + 1]!;
    }
    if (filter === 0 || filter === 2) {
      st.ts = st.rw * st.rh * st.tp;
      this.sset("tdata", 0);
      return false;
    }
    if (filter !== 1) throw new Unframeable(`Tight filter ${filter}`);
    if (this.hl < 3) return this.more(3);
    const colours = b[o + 2]! + 1;
    const rowBytes = colours <= 2 ? Math.floor((st.rw + 7) / 8) : st.rw;
    st.ts = rowBytes * st.rh;
    d.r = colours * st.tp; // the palette
    this.sset("tdata", 0);
    return false;
  }

  // ---------------------------------------------------------------- viewer → console

  /**
   * Viewer → console bytes. `toServer`: what to forward (view-only: only display requests, shared
   * flag forced; our fence answers removed; SetEncodings rewritten when framing is needed).
   * `consumed`: bytes returned by fromServer (fences included) newly proven processed by the viewer.
   * `consumedInput`: the same point counted in fromServer's input bytes, i.e. console bytes: the
   * credit to return to the connector (our fences never came from it).
   * Throws StreamFault only when view-only (input it cannot frame, or a security type it cannot inspect).
   */
  fromViewer(bytes: Uint8Array): { toServer: Uint8Array; consumed: number; consumedInput: number } {
    const st = this.st;
    const ack = st.ack;
    const ackIn = st.ackIn;
    if (bytes.length === 0) return { toServer: bytes, consumed: 0, consumedInput: 0 };
    this.isDirty = true;
    if (st.lost && st.c.h.length === 0 && st.c.b.length === 0) return { toServer: bytes, consumed: 0, consumedInput: 0 };
    this.cOut = [];
    this.parseClient(bytes, 0);
    const out = this.cOut;
    this.cOut = [];
    const toServer =
      out.length === 0 ? new Uint8Array(0) : out.length === 1 ? out[0]! : concatBytes(out);
    return { toServer, consumed: st.ack - ack, consumedInput: st.ackIn - ackIn };
  }

  private emit(bytes: Uint8Array | number[]): void {
    if (bytes.length > 0) this.cOut.push(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes));
  }

  private parseClient(input: Uint8Array, at: number): void {
    const st = this.st;
    const d = st.c;
    let i = at;
    try {
      for (;;) {
        if (st.lost) {
          // Pass the rest untouched, including anything held back so far.
          this.emit(d.h);
          this.emit(d.b);
          d.h = [];
          d.b = [];
          if (i < input.length) this.emit(input.subarray(i));
          return;
        }
        if (d.r > 0) {
          const n = Math.min(d.r, input.length - i);
          if (d.f) this.emit(input.subarray(i, i + n));
          d.r -= n;
          i += n;
          if (d.r > 0) return;
        }
        if (d.p === "w33" && st.sec < 0) {
          // RFB 3.3: the server picks the security type; until it is seen, the viewer's next bytes
          // (a pipelined ClientInit, or a VNC auth response) cannot be classified. Held, bounded.
          if (d.h.length + input.length - i > MAX_HELD) throw new Unframeable("viewer data before the security handshake");
          for (; i < input.length; i++) d.h.push(input[i]!);
          return;
        }
        while (d.b.length < d.n && i < input.length) d.b.push(input[i++]!);
        if (d.b.length < d.n) return;
        this.clientStep();
      }
    } catch (e) {
      if (!(e instanceof Unframeable)) throw e;
      this.lose(e.message);
      // Not view-only (lose() throws otherwise): pass everything on untouched.
      this.emit(d.h);
      this.emit(d.b);
      d.h = [];
      d.b = [];
      if (i < input.length) this.emit(input.subarray(i));
    }
  }

  /** The server's 3.3 security type arrived: parse what the viewer sent meanwhile. */
  private resumeClient(): void {
    const d = this.st.c;
    if (d.p !== "w33") return;
    this.clientStep(); // leaves w33
    const held = Uint8Array.from(d.h);
    d.h = [];
    const saved = this.cOut;
    this.cOut = [];
    try {
      this.parseClient(held, 0);
      for (const piece of this.cOut) this.st.hs.push(...piece);
    } finally {
      this.cOut = saved;
    }
  }

  private cset(p: string, n: number): void {
    const d = this.st.c;
    d.p = p;
    d.n = n;
    d.b = [];
  }

  private clientStep(): void {
    const st = this.st;
    const d = st.c;
    const b = d.b;
    switch (d.p) {
      case "ver": {
        const m = /^RFB 003\.00([378])\n$/.exec(String.fromCharCode(...b));
        if (!m) throw new Unframeable("unsupported RFB version");
        this.emit(b);
        st.ver = Number(m[1]);
        if (st.ver === 3) this.cset("w33", 0);
        else this.cset("choice", 1);
        this.resumeServer();
        return;
      }
      case "w33":
        // Only reached once the server's type is known.
        if (st.sec === 1) this.cset("init", 1);
        else if (st.sec === 2) {
          this.cset("init", 1);
          d.r = 16;
          d.f = true;
        } else if (st.sec === 0) this.cset("failed", 0);
        else throw new Unframeable(`security type ${st.sec} cannot be inspected`);
        return;
      case "choice": {
        const type = b[0]!;
        // Only a type the server offered, for every viewer: a lenient server that accepts another
        // would take what follows as that type's data (a view-only viewer choosing VNC auth where
        // only None was offered smuggled a ClientInit and a KeyEvent in as its "auth response").
        // The list is always read first: the viewer only sees it once the tracker has parsed it.
        if (st.ol !== 0 || ((st.ot![type >> 5]! >>> (type & 31)) & 1) === 0) throw notOffered(type, st.ol === 0);
        // Needed no more: the state stays small (under 1 KiB) once counters grow.
        delete st.ot;
        delete st.ol;
        if (type !== 1 && type !== 2) throw new Unframeable(`security type ${type} cannot be inspected`);
        this.emit(b);
        st.sec = type;
        this.cset("init", 1);
        if (type === 2) {
          d.r = 16; // VNC auth response
          d.f = true;
        }
        this.resumeServer();
        return;
      }
      case "init":
        // 0 would disconnect every other viewer: a view-only viewer is always shared.
        this.emit(this.mode.viewOnly ? [1] : b);
        if (!this.mode.viewOnly && !this.mode.fenceCredit && !this.mode.watchInput) {
          this.cset("pass", 0);
          d.r = FOREVER;
          d.f = true;
        } else this.cset("msg", 1);
        return;
      case "failed":
        // The server refused and closes: nothing more goes to it from a view-only viewer.
        d.r = FOREVER;
        d.f = !this.mode.viewOnly;
        return;
      case "pass":
        d.r = FOREVER;
        d.f = true;
        return;
      case "msg":
        return this.clientMessage();
      case "enc":
        return this.encoding();
    }
    throw new Unframeable(`parser phase ${d.p}`);
  }

  private clientMessage(): void {
    const st = this.st;
    const d = st.c;
    const b = d.b;
    const viewOnly = this.mode.viewOnly;
    const need = (n: number): boolean => {
      if (b.length >= n) return false;
      d.n = n;
      return true;
    };
    /** The whole message is in b: pass or drop it. */
    const whole = (pass: boolean): void => {
      if (pass) this.emit(b);
      this.cset("msg", 1);
    };
    /** The header is in b, `body` bytes follow. */
    const stream = (pass: boolean, body: number): void => {
      if (pass) this.emit(b);
      this.cset("msg", 1);
      d.r = body;
      d.f = pass;
    };
    switch (b[0]) {
      case 0: // SetPixelFormat
        if (need(20)) return;
        this.setPixelFormat(b, 4);
        return whole(true);
      case 2: // SetEncodings: streamed, rewritten one encoding at a time
        if (need(4)) return;
        this.emit(b);
        st.el = u16(b, 2);
        st.ek = null;
        st.er = 0;
        st.ef = false;
        st.eM = false;
        this.cset("enc", 0);
        return;
      case 3: // FramebufferUpdateRequest
        if (need(10)) return;
        return whole(true);
      case 4: // KeyEvent
        if (need(8)) return;
        st.in = (st.in ?? 0) + 1;
        return whole(!viewOnly);
      case 5: // PointerEvent: 7 bytes with bit 7 set once ExtendedMouseButtons is asked AND confirmed
        if (need(2)) return;
        if (need(b[1]! & 0x80 && st.cm && st.sm ? 7 : 6)) return;
        st.in = (st.in ?? 0) + 1;
        return whole(!viewOnly);
      case 6: // ClientCutText (negative length: extended clipboard)
        if (need(8)) return;
        st.in = (st.in ?? 0) + 1;
        return stream(!viewOnly, Math.abs(s32(b, 4)));
      case 150: // EnableContinuousUpdates
        if (need(10)) return;
        return whole(true);
      case 248: {
        // ClientFence: ours are answered with our 8-byte payload and no Request flag.
        if (need(9)) return;
        const request = (u32(b, 4) & FENCE_REQUEST) !== 0;
        if (b[8] === 8 && !request && this.mode.fenceCredit) {
          if (need(17)) return;
          if (FENCE_TAG.every((v, k) => b[9 + k] === v)) {
            this.fenceAnswered(u32(b, 13));
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
          st.in = (st.in ?? 0) + 1;
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

  /** One step of a SetEncodings: d.b holds one encoding, or nothing when the list is done. */
  private encoding(): void {
    const st = this.st;
    const d = st.c;
    if (d.n === 4) {
      const enc = s32(d.b, 0);
      st.el--;
      // Without view-only or fences the console's messages are not framed: nothing to narrow.
      const framed = this.mode.viewOnly || this.mode.fenceCredit;
      if (!framed || FRAMEABLE.has(enc) || isTuning(enc)) {
        // Removed ones before the first kept one are replaced by copies of it: same preference.
        for (let k = 0; k <= st.er; k++) this.emit(d.b);
        st.er = 0;
        st.ek = enc;
        if (enc === ENC_FENCE) st.ef = true;
        if (enc === ENC_EXT_MOUSE) st.eM = true;
      } else if (st.ek !== null) {
        // The count was sent already: a removed encoding becomes a copy of the last kept one,
        // which changes nothing (the first occurrence sets the preference).
        this.emit(be32(st.ek));
      } else st.er++;
    }
    if (st.el > 0) {
      this.cset("enc", 4);
      return;
    }
    // The list is complete. Nothing kept at all: Raw, which every server supports.
    for (let k = 0; k < st.er; k++) this.emit(be32(0));
    st.er = 0;
    st.cf = st.ef;
    st.cm = st.eM;
    if (!st.cm) st.sm = false;
    this.cset("msg", 1);
  }

  private fenceAnswered(nonce: number): void {
    const st = this.st;
    const k = st.fences.findIndex((f) => f[0] === nonce);
    if (k < 0) return; // forgotten or forged: dropped, no credit
    const [, pos, inp] = st.fences[k]!;
    st.fences.splice(0, k + 1);
    if (pos > st.ack) st.ack = pos;
    if (inp > st.ackIn) st.ackIn = inp;
  }

  private lose(reason: string): void {
    if (this.mode.viewOnly) throw viewOnlyFault(reason);
    this.st.lost = true;
    this.st.fences = [];
  }
}

function be32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n);
  return b;
}

