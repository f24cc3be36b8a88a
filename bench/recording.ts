/**
 * Realistic console traffic for the compression section: one session recorded on a real Xvnc
 * (xlogo's desktop, an xclock, an xterm), with the pixel format and encodings noVNC asks for
 * (Tight, ZRLE, …), in segments that each start and end between messages, so the synthetic
 * upstream can replay a segment in a loop and every relay still frames it:
 *   scroll   an xterm scrolling text flat out (and the clock)
 *   region   only the clock's face changing, once a second
 *   idle     nothing changing
 * Recorded once into .build/bench-recording/ (`--record` records again) as <segment>.rfb (the
 * server's bytes) and <segment>.json (each chunk's end and arrival time, for a paced replay).
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { start } from "../test/harness/processes.ts";
import { startDesktop } from "../test/harness/xvnc.ts";
import { open } from "./rfb-conn.ts";

export const RECORDING_DIR = new URL("../.build/bench-recording/", import.meta.url).pathname;
export const SEGMENTS = ["scroll", "region", "idle"] as const;
/** Each segment's length. */
export const RECORD_SECONDS = 4;

/** noVNC 1.7's SetPixelFormat at depth 24: 32 bpp, little endian, true colour, red at bit 0. */
export const RECORD_PIXEL_FORMAT = Buffer.from([0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]);
/** noVNC 1.7's encodings (CopyRect, Tight, TightPNG, ZRLE, JPEG, Hextile, RRE, zlib, Raw, quality 6,
 *  compression 2, DesktopSize, LastRect, Cursor), without those that change the conversation (Fence,
 *  ContinuousUpdates, ExtendedDesktopSize, QEMU keys, clipboard): a recording is one direction. */
export const RECORD_ENCODINGS = [1, 7, -260, 16, 21, 5, 2, 6, 0, -26, -254, -223, -224, -239];

export interface Segment {
  bytes: Buffer;
  /** [start, end, ms after the segment began] of each chunk as it arrived from Xvnc. */
  chunks: [number, number, number][];
  /** How long it lasts (at least RECORD_SECONDS): a paced loop starts its next pass this long after the last. */
  ms: number;
}

/**
 * The whole recorded session: every segment in the order recorded (scroll, region, idle), each
 * starting where the one before ended. A typical console for the capacity section: a third of the
 * time busy, a third a ticking clock, a third still. Segments start and end between messages, so
 * the concatenation (and a loop of it) stays well framed.
 */
export const SESSION = "session";

const loaded = new Map<string, Segment>();
export function loadSegment(name: string): Segment {
  if (!loaded.has(name)) loaded.set(name, name === SESSION ? concat(SEGMENTS.map(loadSegment)) : readSegment(name));
  return loaded.get(name)!;
}

function readSegment(name: string): Segment {
  const chunks = JSON.parse(readFileSync(join(RECORDING_DIR, `${name}.json`), "utf8")) as Segment["chunks"];
  // Chunks may arrive a little after RECORD_SECONDS (the recorder waits for a quiet screen).
  return { bytes: readFileSync(join(RECORDING_DIR, `${name}.rfb`)), chunks, ms: Math.max(RECORD_SECONDS * 1000, (chunks.at(-1)?.[2] ?? 0) + 1) };
}

function concat(segments: Segment[]): Segment {
  const out: Segment = { bytes: Buffer.concat(segments.map((s) => s.bytes)), chunks: [], ms: 0 };
  let bytes = 0;
  for (const s of segments) {
    for (const [start, end, at] of s.chunks) out.chunks.push([bytes + start, bytes + end, out.ms + at]);
    bytes += s.bytes.length;
    out.ms += s.ms;
  }
  return out;
}

export const haveRecording = () => SEGMENTS.every((s) => existsSync(join(RECORDING_DIR, `${s}.rfb`)));
export const recordedAt = () => statSync(join(RECORDING_DIR, "scroll.rfb")).mtime.toISOString();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Records every segment from a fresh Xvnc (about 15 s). */
export async function record(log: (...parts: unknown[]) => void): Promise<void> {
  const desktop = await startDesktop(1024, 768, { name: "bench-recording" });
  const display = `:${desktop.display}`;
  const clock = start("xclock", ["-display", display, "-geometry", "300x300+700+40", "-update", "1"]);
  const xterm = start("xterm", ["-display", display, "-geometry", "100x40+0+0", "-e", "sh", "-c", "while :; do ls -l /usr/lib /usr/share/doc; done"]);
  try {
    const conn = await open({ kind: "tcp", port: desktop.port }, { replay: true });
    let parts: Buffer[] = [];
    let chunks: Segment["chunks"] = [];
    let size = 0;
    let t0 = process.hrtime.bigint();
    let last = Date.now();
    conn.onData = (d) => {
      chunks.push([size, size + d.length, Number(process.hrtime.bigint() - t0) / 1e6]);
      parts.push(d);
      size += d.length;
      last = Date.now();
    };
    for (const d of conn.early.splice(0)) conn.onData(d);
    const fur = (incremental: boolean) => Buffer.from([3, incremental ? 1 : 0, 0, 0, 0, 0, 4, 0, 3, 0]); // 1024×768
    // Every requested update has arrived once nothing came for a while: a boundary between messages.
    const quiet = async () => {
      while (Date.now() - last < 400) await sleep(50);
    };
    conn.send(fur(false));
    await sleep(500);
    await quiet();
    for (const name of SEGMENTS) {
      if (name === "region") await xterm.stop();
      if (name === "idle") await clock.stop();
      if (name !== "scroll") (conn.send(fur(true)), await sleep(200), await quiet());
      [parts, chunks, size, t0] = [[], [], 0, process.hrtime.bigint()];
      // An update request every 20 ms: about what noVNC asks for on a busy screen.
      const timer = setInterval(() => conn.send(fur(true)), 20);
      await sleep(RECORD_SECONDS * 1000);
      clearInterval(timer);
      await quiet();
      mkdirSync(RECORDING_DIR, { recursive: true });
      writeFileSync(join(RECORDING_DIR, `${name}.rfb`), Buffer.concat(parts));
      writeFileSync(join(RECORDING_DIR, `${name}.json`), JSON.stringify(chunks));
      log(`recorded ${name}: ${size} bytes in ${chunks.length} chunks`);
    }
    conn.close();
  } finally {
    await Promise.allSettled([xterm.stop(), clock.stop(), desktop.stop()]);
  }
}

