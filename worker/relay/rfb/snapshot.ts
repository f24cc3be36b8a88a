/**
 * The one place that knows the snapshot's shape: the working state (state.ts, named fields) written
 * to and read from short keys, small enough to share the viewer socket's attachment with the
 * stream's totals and its queued input (up to 4 KiB): workerd refuses an attachment over 16,384
 * bytes (structured-clone size; measured with this repository's workerd, older runtimes allowed
 * 2,048), and this stays under 1 KiB even with every buffer full and every counter at its largest
 * (see the tests). Byte buffers are hex.
 *
 * The keys and phase codes are those the tracker used before it was split (format 1), so both
 * shapes read alike; a deploy closes every socket, so no older snapshot is ever read in practice.
 */
import { badState } from "./faults.ts";
import { MAX_OUTSTANDING_FENCES } from "./fences.ts";
import {
  MAX_HEADER,
  MAX_HELD,
  type ClientPhase,
  type Direction,
  type Fence,
  type ServerPhase,
  type TrackerState,
} from "./state.ts";

/** A direction in the snapshot: p phase code, n need, b header (hex), r body, f passBody, h held (hex). */
export interface DirectionSnapshot {
  p: string;
  n: number;
  b: string;
  r: number;
  f: boolean;
  h: string;
}

/** Everything needed to continue after hibernation, as stored. Each key's field is in read() below. */
export interface RfbTrackerState {
  v: 1;
  c: DirectionSnapshot;
  s: DirectionSnapshot;
  ver: number;
  sec: number;
  ot?: number[];
  ol?: number;
  done: boolean;
  lost: boolean;
  sp?: boolean;
  bpp: number;
  tp: number;
  cf: boolean;
  cm: boolean;
  sm: boolean;
  el: number;
  ek: number | null;
  er: number;
  ef: boolean;
  eM: boolean;
  rl: number;
  rw: number;
  rh: number;
  /** Not read (written by format 1 before the split: the rectangle's encoding). */
  re?: number;
  ti: number;
  ts: number;
  out: number;
  inp: number;
  lf: number;
  ack: number;
  ackIn: number;
  mb: number;
  /** [nonce, returnedAt, receivedAt] */
  fences: [number, number, number][];
  hs: string;
  in?: number;
}

const SERVER_CODES: Record<ServerPhase, string> = {
  version: "ver",
  awaitVersion: "wver",
  securityType: "sec33",
  securityList: "list",
  offeredType: "type",
  awaitChoice: "wsec",
  securityResult: "result",
  failureReason: "reason",
  failed: "failed",
  serverInit: "init",
  serverInitEnd: "inited",
  message: "msg",
  messageEnd: "mend",
  rectHeader: "rect",
  rectEnd: "rend",
  rectLength: "len32",
  h264Header: "h264",
  rreHeader: "rre",
  desktopSizeHeader: "eds",
  vmwareCursor: "vmc",
  hextileTile: "hex",
  hextileNext: "hexnext",
  tightControl: "tight",
  tightData: "tdata",
  tightLength: "clen",
};
const CLIENT_CODES: Record<ClientPhase, string> = {
  version: "ver",
  awaitSecurityType: "w33",
  securityChoice: "choice",
  clientInit: "init",
  failed: "failed",
  passAll: "pass",
  message: "msg",
  encoding: "enc",
};
const SERVER_PHASES = inverse(SERVER_CODES);
const CLIENT_PHASES = inverse(CLIENT_CODES);

function inverse<P extends string>(codes: Record<P, string>): Map<string, P> {
  return new Map(Object.entries(codes).map(([phase, code]) => [code as string, phase as P]));
}

export function writeSnapshot(st: TrackerState): RfbTrackerState {
  const out: RfbTrackerState = {
    v: 1,
    c: writeDirection(st.client, CLIENT_CODES),
    s: writeDirection(st.server, SERVER_CODES),
    ver: st.minorVersion,
    sec: st.securityType,
    done: st.handshakeDone,
    lost: st.lost,
    bpp: st.bytesPerPixel,
    tp: st.tightPixelBytes,
    cf: st.viewerWantsFences,
    cm: st.viewerWantsExtMouse,
    sm: st.serverExtMouse,
    el: st.encodingsLeft,
    ek: st.lastKeptEncoding,
    er: st.encodingsRemoved,
    ef: st.listHasFence,
    eM: st.listHasExtMouse,
    rl: st.rectsLeft,
    rw: st.rectWidth,
    rh: st.rectHeight,
    ti: st.tileIndex,
    ts: st.tightDataBytes,
    out: st.returned,
    inp: st.received,
    lf: st.lastFenceEnd,
    ack: st.proven,
    ackIn: st.provenReceived,
    mb: st.messageBoundary,
    fences: st.fences.map((f): [number, number, number] => [f.nonce, f.returnedAt, f.receivedAt]),
    hs: hex(st.heldForServer),
  };
  // Written only when they say something: the state stays small.
  if (st.offeredTypes !== null) {
    out.ot = [...st.offeredTypes];
    out.ol = st.offeredToRead;
  }
  if (st.serverUnframed) out.sp = true;
  if (st.inputs > 0) out.in = st.inputs;
  return out;
}

/** Our own snapshot, from storage: checked for shape and bounds, not trusted blindly. */
export function readSnapshot(json: RfbTrackerState): TrackerState {
  if (typeof json !== "object" || json === null || json.v !== 1 || !Array.isArray(json.fences)) throw badState();
  let offeredTypes: number[] | null = null;
  if (json.ot !== undefined) {
    if (!(Array.isArray(json.ot) && json.ot.length === 8 && json.ot.every((w) => Number.isInteger(w)))) throw badState();
    offeredTypes = [...json.ot];
  }
  return {
    client: readDirection(json.c, CLIENT_PHASES),
    server: readDirection(json.s, SERVER_PHASES),
    minorVersion: int(json.ver),
    securityType: int(json.sec),
    offeredTypes,
    offeredToRead: offeredTypes === null ? 0 : int(json.ol),
    handshakeDone: bool(json.done),
    lost: bool(json.lost),
    serverUnframed: json.sp === undefined ? false : bool(json.sp),
    bytesPerPixel: int(json.bpp),
    tightPixelBytes: int(json.tp),
    viewerWantsFences: bool(json.cf),
    viewerWantsExtMouse: bool(json.cm),
    serverExtMouse: bool(json.sm),
    encodingsLeft: int(json.el),
    lastKeptEncoding: json.ek === null ? null : int(json.ek),
    encodingsRemoved: int(json.er),
    listHasFence: bool(json.ef),
    listHasExtMouse: bool(json.eM),
    rectsLeft: int(json.rl),
    rectWidth: int(json.rw),
    rectHeight: int(json.rh),
    tileIndex: int(json.ti),
    tightDataBytes: int(json.ts),
    returned: int(json.out),
    received: int(json.inp),
    lastFenceEnd: int(json.lf),
    proven: int(json.ack),
    provenReceived: int(json.ackIn),
    messageBoundary: int(json.mb),
    fences: json.fences.slice(0, MAX_OUTSTANDING_FENCES).map(readFence),
    heldForServer: unhex(json.hs, MAX_HELD + MAX_HEADER),
    inputs: json.in === undefined ? 0 : int(json.in),
  };
}

function writeDirection<P extends string>(d: Direction<P>, codes: Record<P, string>): DirectionSnapshot {
  return { p: codes[d.phase], n: d.need, b: hex(d.header), r: d.body, f: d.passBody, h: hex(d.held) };
}

function readDirection<P extends string>(d: DirectionSnapshot, phases: Map<string, P>): Direction<P> {
  if (typeof d !== "object" || d === null) throw badState();
  const phase = phases.get(d.p);
  if (phase === undefined) throw badState();
  return { phase, need: int(d.n), header: unhex(d.b, MAX_HEADER), body: int(d.r), passBody: bool(d.f), held: unhex(d.h, MAX_HELD) };
}

function readFence(f: unknown): Fence {
  if (!Array.isArray(f) || f.length !== 3) throw badState();
  return { nonce: int(f[0]), returnedAt: int(f[1]), receivedAt: int(f[2]) };
}

function int(v: unknown): number {
  if (!Number.isSafeInteger(v)) throw badState();
  return v as number;
}
function bool(v: unknown): boolean {
  if (typeof v !== "boolean") throw badState();
  return v;
}

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
