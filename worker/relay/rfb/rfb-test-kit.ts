/**
 * Test helpers: RFB message builders and a driver that feeds a tracker both directions, split and
 * resumed from snapshots. Written independently of the tracker (it builds bytes, never parses them).
 */
import { FENCE_TAG, RfbTracker, type Mode, type RfbTrackerState } from "./tracker.ts";

export type Bytes = number[];

export const ascii = (s: string): Bytes => [...s].map((c) => c.charCodeAt(0));
export const u8 = (n: number): Bytes => [n & 0xff];
export const u16 = (n: number): Bytes => [(n >> 8) & 0xff, n & 0xff];
export const u32 = (n: number): Bytes => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
export const fill = (n: number, v = 0x5a): Bytes => new Array<number>(n).fill(v);

/** Tight compact length (1 to 3 bytes). */
export function compact(n: number): Bytes {
  if (n < 128) return [n];
  if (n < 16384) return [0x80 | (n & 0x7f), n >> 7];
  return [0x80 | (n & 0x7f), 0x80 | ((n >> 7) & 0x7f), n >> 14];
}

export const PF32: Bytes = [32, 24, 0, 1, ...u16(255), ...u16(255), ...u16(255), 16, 8, 0, 0, 0, 0];
export const PF16: Bytes = [16, 16, 0, 1, ...u16(31), ...u16(63), ...u16(31), 11, 5, 0, 0, 0, 0];

export type Version = 3 | 7 | 8;
export type Security = 1 | 2;

/** A handshake as the two sides send it, in causal order, and what a view-only tracker lets through. */
export function handshake(ver: Version, sec: Security, shared: number, pf = PF32, pipeline = false): { steps: Op[]; clientOut: Bytes } {
  const version = ascii(`RFB 003.00${ver}\n`);
  // pipeline (RFB 3.3, None): the viewer sends ClientInit with its version, before the security type.
  const early = pipeline && ver === 3 && sec === 1;
  const steps: Op[] = [["s", ascii("RFB 003.008\n")], ["c", early ? [...version, shared] : version]];
  const out: Bytes = [...version];
  if (ver === 3) steps.push(["s", u32(sec)]);
  else {
    steps.push(["s", [2, 1, 2]]);
    steps.push(["c", [sec]]);
    out.push(sec);
  }
  if (sec === 2) {
    steps.push(["s", fill(16, 7)]);
    steps.push(["c", fill(16, 9)]);
    out.push(...fill(16, 9));
  }
  if (sec === 2 || ver === 8) steps.push(["s", u32(0)]);
  if (!early) steps.push(["c", [shared]]);
  out.push(1);
  steps.push(["s", [...u16(1024), ...u16(768), ...pf, ...u32(4), ...ascii("test")]]);
  return { steps, clientOut: out };
}

/** One step: bytes from the server ("s") or the viewer ("c"). */
export type Op = ["s" | "c", Bytes];

export interface Driven {
  toServer: Bytes;
  toViewer: Uint8Array[];
  consumed: number;
  consumedInput: number;
  maxSnapshot: number;
  tracker: RfbTracker;
}

/**
 * Feeds ops in order; consecutive ops of one direction are joined and the result is cut at `cuts`
 * (offsets into that run). `resumeAt` lists piece indices after which the tracker is rebuilt from a
 * JSON round trip of its snapshot.
 */
export function drive(mode: Mode, ops: Op[], cuts: number[] = [], resumeAt: number[] = [], start?: RfbTracker): Driven {
  const runs: Op[] = [];
  for (const [dir, bytes] of ops) {
    const last = runs.at(-1);
    if (last && last[0] === dir) last[1] = last[1].concat(bytes);
    else runs.push([dir, [...bytes]]);
  }
  let tracker = start ?? new RfbTracker(mode);
  const d: Driven = { toServer: [], toViewer: [], consumed: 0, consumedInput: 0, maxSnapshot: 0, tracker };
  const resume = new Set(resumeAt);
  let piece = 0;
  let cutAt = 0;
  for (const [dir, bytes] of runs) {
    const points = [...new Set(cuts.map((c) => c - cutAt).filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
    cutAt += bytes.length;
    let from = 0;
    for (const to of [...points, bytes.length]) {
      const chunk = Uint8Array.from(bytes.slice(from, to));
      from = to;
      if (dir === "s") {
        d.toViewer.push(...tracker.fromServer(chunk));
        const held = tracker.takeHeldForServer();
        if (held) d.toServer.push(...held);
      } else {
        const r = tracker.fromViewer(chunk);
        d.toServer.push(...r.toServer);
        d.consumed += r.consumed;
        d.consumedInput += r.consumedInput;
      }
      if (resume.has(piece)) {
        const json = JSON.stringify(tracker.snapshot());
        d.maxSnapshot = Math.max(d.maxSnapshot, json.length);
        tracker = new RfbTracker(mode, JSON.parse(json) as RfbTrackerState);
      }
      piece++;
    }
  }
  d.tracker = tracker;
  return d;
}

export function flat(parts: Uint8Array[]): Bytes {
  const out: Bytes = [];
  for (const p of parts) for (const b of p) out.push(b);
  return out;
}

// ---- client messages
export const setPixelFormat = (pf: Bytes): Bytes => [0, 0, 0, 0, ...pf];
export const setEncodings = (encs: number[]): Bytes => [2, 0, ...u16(encs.length), ...encs.flatMap((e) => u32(e >>> 0))];
export const fbur = (incremental = 1): Bytes => [3, incremental, ...u16(0), ...u16(0), ...u16(800), ...u16(600)];
export const enableCU = (): Bytes => [150, 1, ...u16(0), ...u16(0), ...u16(800), ...u16(600)];
export const clientFence = (flags: number, payload: Bytes): Bytes => [248, 0, 0, 0, ...u32(flags), payload.length, ...payload];
export const keyEvent = (): Bytes => [4, 1, 0, 0, ...u32(0xff0d)];
export const pointer = (mask: number): Bytes => [5, mask, ...u16(10), ...u16(20)];
export const pointerExt = (mask: number, high: number): Bytes => [5, mask | 0x80, ...u16(10), ...u16(20), high];
export const cutText = (n: number, extended = false): Bytes => [6, 0, 0, 0, ...u32(extended ? -n : n), ...fill(n, 0x41)];
export const xvp = (): Bytes => [250, 0, 1, 2];
export const setDesktopSize = (screens: number): Bytes => [251, 0, ...u16(1024), ...u16(768), screens, 0, ...fill(16 * screens, 1)];
export const gii = (n: number, bigEndian: boolean): Bytes => [253, bigEndian ? 0x82 : 0x02, ...(bigEndian ? u16(n) : [n & 0xff, n >> 8]), ...fill(n, 3)];
export const qemuKey = (): Bytes => [255, 0, ...u16(1), ...u32(0x61), ...u32(0x1e)];
export const qemuAudio = (op: 0 | 1 | 2): Bytes => (op === 2 ? [255, 1, ...u16(2), 3, 0, ...u32(44100)] : [255, 1, ...u16(op)]);

// ---- server messages
export interface Rect {
  enc: number;
  w: number;
  h: number;
  body: Bytes;
}
export const fbu = (rects: Rect[], lastRect = false): Bytes => [
  0,
  0,
  ...u16(lastRect ? 0xffff : rects.length),
  ...rects.flatMap((r) => [...u16(0), ...u16(0), ...u16(r.w), ...u16(r.h), ...u32(r.enc >>> 0), ...r.body]),
  ...(lastRect ? [...u16(0), ...u16(0), ...u16(0), ...u16(0), ...u32(-224 >>> 0)] : []),
];
export const colourMap = (n: number): Bytes => [1, 0, ...u16(0), ...u16(n), ...fill(6 * n)];
export const bell = (): Bytes => [2];
export const serverCut = (n: number, extended = false): Bytes => [3, 0, 0, 0, ...u32(extended ? -n : n), ...fill(n, 0x42)];
export const endCU = (): Bytes => [150];
export const serverFence = (flags: number, payload: Bytes): Bytes => [248, 0, 0, 0, ...u32(flags), payload.length, ...payload];
export const xvpServer = (code: number): Bytes => [250, 0, 1, code];
export const qemuAudioServer = (op: 0 | 1 | 2, n = 0): Bytes => (op === 2 ? [255, 1, ...u16(2), ...u32(n), ...fill(n)] : [255, 1, ...u16(op)]);

// ---- shared by the test files

export const VIEW: Mode = { viewOnly: true, fenceCredit: false };
export const FENCED: Mode = { viewOnly: false, fenceCredit: true };

/** Encodings the tracker can frame (the test's own list, from the spec). */
export const FRAMEABLE = [0, 1, 2, 5, 6, 7, 16, 50, -260, -223, -224, -239, -240, -257, -258, -259, -261, -307, -308, -309, -312, -313, -316, 0x574d5664, 0xc0a1e5ce | 0];
export const TUNING = [-32, -23, -256, -247, -512, -412, -768, -763];
export const UNFRAMEABLE = [4, 8, 15, 17, 21, -305, -317, 0x574d5665, 1000, -1];

/** What the tracker must make of a SetEncodings: removed ones become copies of a neighbour kept one. */
export function rewritten(encs: number[]): number[] {
  const keep = (e: number) => FRAMEABLE.includes(e) || TUNING.includes(e);
  const firstKept = encs.find(keep) ?? 0;
  let last: number | null = null;
  return encs.map((e) => {
    if (keep(e)) return (last = e);
    return last ?? firstKept;
  });
}

export function isInjectedFence(p: Uint8Array): boolean {
  return p.length === 17 && p[0] === 248 && p[8] === 8 && FENCE_TAG.every((v, k) => p[9 + k] === v);
}

export function setup(mode: Mode, ver: Version, sec: Security, pipeline = false): { tracker: RfbTracker; clientOut: Bytes } {
  const hs = handshake(ver, sec, 0, PF32, pipeline);
  const d = drive(mode, hs.steps);
  return { tracker: d.tracker, clientOut: d.toServer };
}
