/**
 * The tunnel's binary framing. One WebSocket message carries one or more whole frames, so small
 * frames can be batched into one message (the edge pays per message, not per byte).
 *
 *   type u8 | stream u32 BE | length u32 BE | payload (length bytes)
 *
 * Decoding is done once, here, at the edge of each side: everything past `decodeMessage` handles
 * typed frames only.
 */
import { CloseCode, clampReason } from "./close-codes.ts";
import { FRAME_HEADER_BYTES, MAX_CONTROL_BYTES, MAX_DATA_BYTES_ACCEPTED } from "./limits.ts";

export const FrameType = {
  /** connector → edge, stream 0, JSON Hello. Always the first frame; its layout never changes. */
  hello: 0x01,
  /** edge → connector, stream 0, JSON Welcome. */
  welcome: 0x02,
  /** connector → edge, stream 0, JSON Inventory (replaces the previous one). */
  inventory: 0x03,
  /** edge → connector, JSON OpenRequest. Grants an initial window in both directions. */
  open: 0x10,
  /** connector → edge, empty: the upstream console is connected. */
  openOk: 0x11,
  /** connector → edge, u16 code + UTF-8 reason. The stream is gone. */
  openError: 0x12,
  /** either way, raw console bytes (at most the receiver's maxDataBytes). Costs credit. */
  data: 0x13,
  /** either way, u32: the sender may send this many more DATA bytes on the stream. */
  credit: 0x14,
  /** either way, u16 code + UTF-8 reason. The stream is gone. */
  close: 0x15,
  /**
   * connector → edge, empty (capability `ack`): OPEN received, the console is being opened. Sent
   * at once, before any wait, so the edge can tell a connector that stopped from a slow upstream.
   */
  openAck: 0x16,
  /** edge → connector, request id in the stream field, JSON TunnelRequest. */
  request: 0x20,
  /** connector → edge, the request's id, JSON TunnelReply. */
  reply: 0x21,
} as const;

export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

export type Frame =
  | { type: typeof FrameType.hello | typeof FrameType.welcome | typeof FrameType.inventory; stream: 0; json: unknown }
  | { type: typeof FrameType.open | typeof FrameType.request | typeof FrameType.reply; stream: number; json: unknown }
  | { type: typeof FrameType.openOk | typeof FrameType.openAck; stream: number }
  | { type: typeof FrameType.openError | typeof FrameType.close; stream: number; code: number; reason: string }
  | { type: typeof FrameType.data; stream: number; bytes: Uint8Array }
  | { type: typeof FrameType.credit; stream: number; bytes: number };

/** A frame that cannot be parsed: the receiving side closes the tunnel with `code`. */
export class ProtocolError extends Error {
  readonly code = CloseCode.protocolError;
}

const MAX_PAYLOAD: Record<number, number> = {
  [FrameType.hello]: MAX_CONTROL_BYTES,
  [FrameType.welcome]: 4096,
  [FrameType.inventory]: MAX_CONTROL_BYTES,
  [FrameType.open]: 4096,
  [FrameType.openOk]: 0,
  [FrameType.openAck]: 0,
  [FrameType.openError]: 2 + 123,
  [FrameType.data]: MAX_DATA_BYTES_ACCEPTED,
  [FrameType.credit]: 4,
  [FrameType.close]: 2 + 123,
  [FrameType.request]: 4096,
  [FrameType.reply]: 64 * 1024,
};

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function header(type: number, stream: number, length: number): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + length);
  writeHeader(out, 0, type, stream, length);
  return out;
}

/**
 * Writes a frame header into `out` at `at`, for a sender that assembles a whole message in one
 * buffer (the connector copies each payload once, straight behind its header).
 */
export function writeHeader(out: Uint8Array, at: number, type: number, stream: number, length: number): void {
  const max = MAX_PAYLOAD[type];
  if (max === undefined || length > max) throw new RangeError(`frame type ${type} payload of ${length} bytes exceeds ${max}`);
  out[at] = type;
  out[at + 1] = stream >>> 24;
  out[at + 2] = (stream >>> 16) & 0xff;
  out[at + 3] = (stream >>> 8) & 0xff;
  out[at + 4] = stream & 0xff;
  out[at + 5] = length >>> 24;
  out[at + 6] = (length >>> 16) & 0xff;
  out[at + 7] = (length >>> 8) & 0xff;
  out[at + 8] = length & 0xff;
}

function withPayload(type: number, stream: number, payload: Uint8Array): Uint8Array {
  const max = MAX_PAYLOAD[type];
  if (max === undefined || payload.length > max) {
    throw new RangeError(`frame type ${type} payload of ${payload.length} bytes exceeds ${max}`);
  }
  const out = header(type, stream, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

export function encodeJson(type: 0x01 | 0x02 | 0x03 | 0x10 | 0x20 | 0x21, stream: number, value: unknown): Uint8Array {
  return withPayload(type, stream, textEncoder.encode(JSON.stringify(value)));
}

export function encodeData(stream: number, bytes: Uint8Array): Uint8Array {
  return withPayload(FrameType.data, stream, bytes);
}

export function encodeCredit(stream: number, bytes: number): Uint8Array {
  const out = header(FrameType.credit, stream, 4);
  new DataView(out.buffer).setUint32(FRAME_HEADER_BYTES, bytes);
  return out;
}

export function encodeOpenOk(stream: number): Uint8Array {
  return header(FrameType.openOk, stream, 0);
}

export function encodeOpenAck(stream: number): Uint8Array {
  return header(FrameType.openAck, stream, 0);
}

/** CLOSE or OPEN_ERROR; the reason is cut to fit a WebSocket close frame. */
export function encodeClose(type: 0x12 | 0x15, stream: number, code: number, reason: string): Uint8Array {
  const text = textEncoder.encode(clampReason(reason));
  const out = header(type, stream, 2 + text.length);
  new DataView(out.buffer).setUint16(FRAME_HEADER_BYTES, code);
  out.set(text, FRAME_HEADER_BYTES + 2);
  return out;
}

/** Joins byte arrays (frames into one WebSocket message, pieces of a console stream). */
export function concatBytes(frames: readonly Uint8Array[]): Uint8Array {
  if (frames.length === 1) return frames[0]!;
  let total = 0;
  for (const f of frames) total += f.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

function parsePayload(type: number, stream: number, payload: Uint8Array): Frame {
  switch (type) {
    case FrameType.hello:
    case FrameType.welcome:
    case FrameType.inventory:
      if (stream !== 0) throw new ProtocolError(`control frame ${type} on stream ${stream}`);
      return { type, stream: 0, json: parseJson(payload) };
    case FrameType.open:
    case FrameType.request:
    case FrameType.reply:
      if (stream === 0) throw new ProtocolError(`frame type 0x${type.toString(16)} on stream 0`);
      return { type, stream, json: parseJson(payload) };
    case FrameType.openOk:
    case FrameType.openAck:
      return { type, stream };
    case FrameType.openError:
    case FrameType.close: {
      if (payload.length < 2) throw new ProtocolError("close frame without a code");
      const code = (payload[0]! << 8) | payload[1]!;
      return { type, stream, code, reason: decodeText(payload.subarray(2)) };
    }
    case FrameType.data:
      return { type, stream, bytes: payload };
    case FrameType.credit: {
      if (payload.length !== 4) throw new ProtocolError("credit frame must carry 4 bytes");
      const bytes = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
      return { type, stream, bytes };
    }
    default:
      throw new ProtocolError(`unknown frame type 0x${type.toString(16)}`);
  }
}

function decodeText(bytes: Uint8Array): string {
  try {
    return textDecoder.decode(bytes);
  } catch {
    throw new ProtocolError("text payload is not UTF-8");
  }
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decodeText(bytes));
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError("control payload is not JSON");
  }
}

/** Reads the header at `at`, checking the type and the size before any payload is touched. */
function readHeader(view: DataView, at: number): { type: number; stream: number; length: number } {
  const type = view.getUint8(at);
  const stream = view.getUint32(at + 1);
  const length = view.getUint32(at + 5);
  const max = MAX_PAYLOAD[type];
  if (max === undefined) throw new ProtocolError(`unknown frame type 0x${type.toString(16)}`);
  if (length > max) throw new ProtocolError(`frame type 0x${type.toString(16)} of ${length} bytes exceeds ${max}`);
  return { type, stream, length };
}

/**
 * Decodes one WebSocket message, which must hold whole frames only. Payloads are views into
 * `message` (no copy).
 */
export function decodeMessage(message: Uint8Array): Frame[] {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const frames: Frame[] = [];
  let at = 0;
  while (at < message.length) {
    if (message.length - at < FRAME_HEADER_BYTES) throw new ProtocolError("message ends inside a frame header");
    const { type, stream, length } = readHeader(view, at);
    const start = at + FRAME_HEADER_BYTES;
    if (start + length > message.length) throw new ProtocolError("message ends inside a frame payload");
    frames.push(parsePayload(type, stream, message.subarray(start, start + length)));
    at = start + length;
  }
  if (frames.length === 0) throw new ProtocolError("empty message");
  return frames;
}
