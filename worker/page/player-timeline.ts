/**
 * A recording (docs/recording.md) made ready to play: the console's bytes with their times, the
 * marks a player shows on its Position slider, and the check of the SHA-256 chain. Pure, no DOM.
 */
import { decodeRecording, RecordKind, type RecordingHeader } from "../site/recording-format.ts";

export interface Mark {
  ms: number;
  kind: "connect" | "input" | "gap" | "end";
  label: string;
}

export interface Timeline {
  header: RecordingHeader;
  /** Console → viewer bytes, in order, ServerInit first. */
  chunks: { ms: number; bytes: Uint8Array }[];
  marks: Mark[];
  duration: number;
}

/** Input marks closer than this make one burst on the slider. */
export const BURST_GAP_MS = 2000;

export function timeline(file: Uint8Array): Timeline {
  const { header, records } = decodeRecording(file);
  const chunks: Timeline["chunks"] = [];
  const marks: Mark[] = [];
  let burst: Mark | null = null;
  let last = 0;
  for (const r of records) {
    last = Math.max(last, r.ms);
    if (r.kind === RecordKind.server) chunks.push({ ms: r.ms, bytes: r.payload });
    if (r.kind !== RecordKind.mark) continue;
    let m: { mark?: string; count?: number; reason?: string } = {};
    try {
      m = JSON.parse(new TextDecoder().decode(r.payload)) as typeof m;
    } catch {
      continue;
    }
    if (m.mark === "input") {
      if (burst && r.ms - burst.ms <= BURST_GAP_MS) continue;
      burst = { ms: r.ms, kind: "input", label: "Input" };
      marks.push(burst);
    } else if (m.mark === "connect") marks.push({ ms: r.ms, kind: "connect", label: "Connected" });
    else if (m.mark === "gap") marks.push({ ms: r.ms, kind: "gap", label: "Gap: some of the recording is missing here" });
    else if (m.mark === "end") marks.push({ ms: r.ms, kind: "end", label: `End${m.reason ? `: ${m.reason}` : ""}` });
  }
  return { header, chunks, marks, duration: last };
}

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

async function sha256(a: Uint8Array, b?: Uint8Array): Promise<Uint8Array> {
  const all = new Uint8Array(a.length + (b?.length ?? 0));
  all.set(a);
  if (b) all.set(b, a.length);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

/**
 * Whether the file's segments (sizes from the index, in order) hash to the index's chain head:
 * c0 = SHA-256(header), cN = SHA-256(c(N-1) ‖ segment N). Null when the index has no chain.
 */
export async function verifyChain(file: Uint8Array, segmentBytes: number[], chain: string): Promise<boolean | null> {
  if (!chain) return null;
  const headerLen = 12 + new DataView(file.buffer, file.byteOffset, file.byteLength).getUint32(8);
  let c = await sha256(file.subarray(0, headerLen));
  let at = headerLen;
  for (const n of segmentBytes) {
    if (at + n > file.length) return false;
    c = await sha256(c, file.subarray(at, at + n));
    at += n;
  }
  return at === file.length && hex(c) === chain;
}

/** m:ss (h:mm:ss past an hour). */
export function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}
