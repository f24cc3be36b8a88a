/**
 * The tracker's working state: every field named for what it holds. It is all plain data (numbers,
 * booleans, small byte arrays), so snapshot.ts can write it into a socket attachment and read it
 * back at any byte; nothing else knows the attachment's short keys.
 */

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
/** Body length for "pass everything from here on" (finite: the state must survive JSON). */
export const FOREVER = Number.MAX_SAFE_INTEGER;

/** Console → viewer, before ServerInit has passed (handshake.ts). */
export type ServerHandshakePhase =
  | "version" // ProtocolVersion (12 bytes)
  | "awaitVersion" // what follows depends on the version the viewer chooses
  | "securityType" // RFB 3.3: the server decides (u32)
  | "securityList" // RFB 3.7+: count of offered types (0: a failure reason follows)
  | "offeredType" // one offered type
  | "awaitChoice" // what follows depends on the type the viewer chooses
  | "securityResult" // SecurityResult (u32)
  | "failureReason" // reason length (u32), the text streams through
  | "failed" // the server refused and closes: everything passes unparsed
  | "serverInit" // ServerInit's fixed part (24 bytes); the name streams through
  | "serverInitEnd"; // the name has passed: the handshake is done
/** Console → viewer, once the handshake is done (server-framing.ts). */
export type ServerMessagePhase =
  | "message" // a message type (and as much header as the type needs)
  | "messageEnd" // a message's body has streamed through
  | "rectHeader" // a FramebufferUpdate rectangle header (12 bytes)
  | "rectEnd" // a rectangle's body has streamed through
  | "rectLength" // zlib, ZRLE, DesktopName: u32 length of the body
  | "h264Header" // Open H.264: u32 length and u32 flags
  | "rreHeader" // RRE: subrectangle count and background pixel
  | "desktopSizeHeader" // ExtendedDesktopSize: screen count and padding
  | "vmwareCursor" // VMware cursor: type and padding
  | "hextileTile" // a Hextile tile's subencoding (and its optional header fields)
  | "hextileNext" // a tile's body has streamed through
  | "tightControl" // Tight compression control (and filter id, palette size)
  | "tightData" // Tight data: raw when short, else a compact length first
  | "tightLength"; // Tight compact length, 1 to 3 bytes
export type ServerPhase = ServerHandshakePhase | ServerMessagePhase;

/** Viewer → console, during the handshake (handshake.ts). */
export type ClientHandshakePhase =
  | "version" // ProtocolVersion (12 bytes)
  | "awaitSecurityType" // RFB 3.3: the viewer's next bytes depend on the server's type
  | "securityChoice" // RFB 3.7+: the chosen type (1 byte)
  | "clientInit" // ClientInit's shared flag
  | "failed" // the server refused: nothing more is parsed
  | "passAll"; // nothing needs the viewer's messages: everything passes
/** Viewer → console, once ClientInit has passed (client-filter.ts). */
export type ClientMessagePhase =
  | "message" // a message type (and as much header as the type needs)
  | "encoding"; // one encoding of a SetEncodings list
export type ClientPhase = ClientHandshakePhase | ClientMessagePhase;

/** One direction's parser position. */
export interface Direction<P extends string> {
  phase: P;
  /** Header bytes the phase needs before it can decide. */
  need: number;
  /** Header bytes received so far (<= MAX_HEADER). */
  header: number[];
  /** Body bytes still to stream through; the viewer's are passed if `passBody`, dropped otherwise. */
  body: number;
  passBody: boolean;
  /** Handshake bytes waiting for the other direction (<= MAX_HELD). */
  held: number[];
}

/** A fence we injected and still remember (fences.ts). */
export interface Fence {
  nonce: number;
  /** Bytes returned by fromServer up to and including the fence. */
  returnedAt: number;
  /** Console bytes received up to the fence. */
  receivedAt: number;
}

export interface TrackerState {
  client: Direction<ClientPhase>;
  server: Direction<ServerPhase>;
  /** RFB minor version chosen by the viewer (3, 7, 8), 0 before. */
  minorVersion: number;
  /** Security type: chosen by the viewer (3.7+) or the server (3.3); -1 before. */
  securityType: number;
  /**
   * RFB 3.7+: the types the server offered, a 256-bit set as 8 u32 words, once its whole list was
   * read; `offeredToRead` the list's types still to read. The viewer may choose only these. Only
   * between the server's list and the viewer's choice (null otherwise: the state stays small).
   */
  offeredTypes: number[] | null;
  offeredToRead: number;
  /** ServerInit has passed. */
  handshakeDone: boolean;
  /**
   * The console-direction byte offset (since the stream opened) where ServerInit begins, once the
   * tracker knows it. Everything before is the handshake, security included, which a recording
   * must never hold (worker/site/recording-book.ts). Not in the snapshot: the stream book reads it
   * in the same event that sets it.
   */
  serverInitAt?: number;
  /** Framing was lost (an unframeable message or security type), or is not needed at all. */
  lost: boolean;
  /** Console messages are not framed, by choice (only the viewer's input is watched). */
  serverUnframed: boolean;
  /** Bytes per pixel and Tight pixel (TPIXEL) size of the current pixel format. */
  bytesPerPixel: number;
  tightPixelBytes: number;
  /** The viewer's last SetEncodings listed Fence / ExtendedMouseButtons; the server confirmed the latter. */
  viewerWantsFences: boolean;
  viewerWantsExtMouse: boolean;
  serverExtMouse: boolean;
  /** SetEncodings rewrite in progress: encodings left, last kept, removed not yet replaced, Fence / ExtendedMouseButtons seen. */
  encodingsLeft: number;
  lastKeptEncoding: number | null;
  encodingsRemoved: number;
  listHasFence: boolean;
  listHasExtMouse: boolean;
  /** Server FramebufferUpdate: rectangles left, current rectangle size, Hextile tile index, Tight data size. */
  rectsLeft: number;
  rectWidth: number;
  rectHeight: number;
  tileIndex: number;
  tightDataBytes: number;
  /** Bytes returned by fromServer (fences included) / received by fromServer; where the last fence ended (returned). */
  returned: number;
  received: number;
  lastFenceEnd: number;
  /** Bytes already reported proven processed (returned, received). */
  proven: number;
  provenReceived: number;
  /** Received position of the last console message boundary. */
  messageBoundary: number;
  /** Outstanding fences, oldest first (at most MAX_OUTSTANDING_FENCES). */
  fences: Fence[];
  /** Viewer bytes released by console data, for takeHeldForServer(). */
  heldForServer: number[];
  /** Input messages the viewer sent (keys, pointer, clipboard, QEMU keys), passed or dropped. */
  inputs: number;
}

export function newDirection<P extends string>(phase: P, need: number): Direction<P> {
  return { phase, need, header: [], body: 0, passBody: true, held: [] };
}

export function newState(): TrackerState {
  return {
    client: newDirection<ClientPhase>("version", 12),
    server: newDirection<ServerPhase>("version", 12),
    minorVersion: 0,
    securityType: -1,
    offeredTypes: null,
    offeredToRead: 0,
    handshakeDone: false,
    lost: false,
    serverUnframed: false,
    bytesPerPixel: 0,
    tightPixelBytes: 0,
    viewerWantsFences: false,
    viewerWantsExtMouse: false,
    serverExtMouse: false,
    encodingsLeft: 0,
    lastKeptEncoding: null,
    encodingsRemoved: 0,
    listHasFence: false,
    listHasExtMouse: false,
    rectsLeft: 0,
    rectWidth: 0,
    rectHeight: 0,
    tileIndex: 0,
    tightDataBytes: 0,
    returned: 0,
    received: 0,
    lastFenceEnd: 0,
    proven: 0,
    provenReceived: 0,
    messageBoundary: 0,
    fences: [],
    heldForServer: [],
    inputs: 0,
  };
}
