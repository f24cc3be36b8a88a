/**
 * The recording file format (docs/recording.md), pure: no I/O. A recording is its header object
 * followed by its segments, concatenated; each segment is a run of whole records, so any prefix
 * of segments is a readable recording.
 *
 *   header  = "PHREC001" · u32 length · JSON (utf-8)
 *   record  = u8 kind · u32 ms since startedAt · u32 length · payload      (big-endian)
 *
 * Kinds: 1 console → viewer bytes from ServerInit on (never the security handshake), 2 one whole
 * viewer → console message (SetPixelFormat, SetEncodings; input only when the site records it),
 * 3 a mark (JSON: connect, gap, end).
 */

export const MAGIC = "PHREC001";
export const RECORD_HEADER_BYTES = 9;

export const RecordKind = { server: 1, viewer: 2, mark: 3 } as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

export interface RecordingHeader {
  format: 1;
  id: string;
  site: string;
  hypervisor: string;
  vm: string;
  user?: string;
  linkId?: string;
  /** ISO time; records count milliseconds from it. */
  startedAt: string;
  recordInput: boolean;
}

const utf8 = new TextEncoder();

export function encodeHeader(header: RecordingHeader): Uint8Array {
  const json = utf8.encode(JSON.stringify(header));
  const out = new Uint8Array(MAGIC.length + 4 + json.length);
  out.set(utf8.encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, json.length);
  out.set(json, MAGIC.length + 4);
  return out;
}

/** One record; the payload is copied (the runtime may reuse a message's buffer after the event). */
export function encodeRecord(kind: RecordKind, ms: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, kind);
  v.setUint32(1, Math.max(0, Math.min(0xffffffff, Math.floor(ms))));
  v.setUint32(5, payload.length);
  out.set(payload, RECORD_HEADER_BYTES);
  return out;
}

export function encodeMark(ms: number, mark: Record<string, unknown>): Uint8Array {
  return encodeRecord(RecordKind.mark, ms, utf8.encode(JSON.stringify(mark)));
}

/** Reads a whole recording (header and records): for tests and the player. */
export function decodeRecording(bytes: Uint8Array): { header: RecordingHeader; records: { kind: number; ms: number; payload: Uint8Array }[] } {
  const magic = new TextDecoder().decode(bytes.subarray(0, MAGIC.length));
  if (magic !== MAGIC) throw new Error("not a Porthole recording");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hl = v.getUint32(MAGIC.length);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + hl))) as RecordingHeader;
  const records: { kind: number; ms: number; payload: Uint8Array }[] = [];
  let at = MAGIC.length + 4 + hl;
  while (at + RECORD_HEADER_BYTES <= bytes.length) {
    const len = v.getUint32(at + 5);
    if (at + RECORD_HEADER_BYTES + len > bytes.length) break;
    records.push({ kind: v.getUint8(at), ms: v.getUint32(at + 1), payload: bytes.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + len) });
    at += RECORD_HEADER_BYTES + len;
  }
  return { header, records };
}

/** Longest viewer message a recording keeps (SetEncodings lists, clipboard texts); longer ones are skipped. */
export const MAX_KEPT_MESSAGE = 64 * 1024;

/**
 * Frames the viewer's RFB messages after ServerInit, so a recording keeps what decoding depends on
 * (SetPixelFormat, SetEncodings) and, when asked, input (KeyEvent, PointerEvent, ClientCutText,
 * QEMU extended key events), and nothing else (our fence answers, update requests). Bodies it does
 * not keep are skipped, never held. A message type it does not know stops it (`lost`): the rest of
 * the viewer's direction is then not recorded, which the recording marks.
 */
export class ViewerMessages {
  private head: number[] = [];
  private length: number | null = null;
  private skip = 0;
  lost = false;
  private readonly keepInput: boolean;

  constructor(keepInput: boolean) {
    this.keepInput = keepInput;
  }

  /** Whole kept messages in `bytes`, and how many of them are input. */
  feed(bytes: Uint8Array): { kept: Uint8Array[]; inputs: number } {
    const kept: Uint8Array[] = [];
    let inputs = 0;
    let i = 0;
    while (i < bytes.length && !this.lost) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, bytes.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      if (this.length === null) {
        this.head.push(bytes[i++]!);
        const len = messageLength(this.head);
        if (len === null) {
          this.lost = true;
          break;
        }
        if (len === "more") continue;
        this.length = len;
        if (!this.keeps(this.head) || len > MAX_KEPT_MESSAGE) {
          this.skip = len - this.head.length;
          this.head = [];
          this.length = null;
          continue;
        }
      }
      const n = Math.min(this.length - this.head.length, bytes.length - i);
      for (let k = 0; k < n; k++) this.head.push(bytes[i + k]!);
      i += n;
      if (this.head.length === this.length) {
        const type = this.head[0]!;
        if (type !== 0 && type !== 2) inputs++;
        kept.push(Uint8Array.from(this.head));
        this.head = [];
        this.length = null;
      }
    }
    return { kept, inputs };
  }

  private keeps(head: number[]): boolean {
    const type = head[0]!;
    if (type === 0 || type === 2) return true;
    return this.keepInput && (type === 4 || type === 5 || type === 6 || (type === 255 && head[1] === 0));
  }
}

/** A client message's length from its first bytes: "more" until they tell, null for a type not known. */
export function messageLength(h: number[]): number | "more" | null {
  const u16 = (at: number) => (h[at]! << 8) | h[at + 1]!;
  const need = (n: number, len: () => number) => (h.length < n ? "more" : len());
  switch (h[0]) {
    case 0: return 20; // SetPixelFormat
    case 2: return need(4, () => 4 + 4 * u16(2)); // SetEncodings
    case 3: return 10; // FramebufferUpdateRequest
    case 4: return 8; // KeyEvent
    case 5: return 6; // PointerEvent
    case 6: return need(8, () => 8 + Math.abs(new DataView(Uint8Array.from(h).buffer).getInt32(4))); // ClientCutText (negative: extended)
    case 150: return 10; // EnableContinuousUpdates
    case 248: return need(9, () => 9 + h[8]!); // ClientFence
    case 250: return 4; // xvp
    case 251: return need(8, () => 8 + 16 * h[6]!); // SetDesktopSize
    case 252: return need(4, () => 4 + u16(2)); // gii
    case 255: // QEMU: extended key event, or audio
      if (h.length < 2) return "more";
      if (h[1] === 0) return 12;
      if (h[1] === 1) return need(4, () => (u16(2) === 2 ? 10 : 4));
      return null;
    default:
      return null;
  }
}
