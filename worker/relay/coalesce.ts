/**
 * Consecutive DATA frames of one stream in one tunnel message become one frame, so the viewer gets
 * one WebSocket message per batch instead of one per 32 KiB frame: the runtime's per-message cost
 * (an event, a send) dominates the relay's own work. Connectors that take WELCOME's 256 KiB send a
 * stream's batch as one frame, which passes through without a copy; the join (a copy) is for
 * connectors that still send 32 KiB frames.
 */
import { concatBytes, type Frame, FrameType } from "../../shared/protocol/frames.ts";

export function coalesceData(frames: Frame[]): Frame[] {
  if (frames.length < 2) return frames;
  const out: Frame[] = [];
  for (let i = 0; i < frames.length; i++) {
    const first = frames[i]!;
    if (first.type !== FrameType.data) {
      out.push(first);
      continue;
    }
    let j = i + 1;
    while (j < frames.length) {
      const next = frames[j]!;
      if (next.type !== FrameType.data || next.stream !== first.stream) break;
      j++;
    }
    if (j === i + 1) {
      out.push(first);
      continue;
    }
    const parts = frames.slice(i, j).map((f) => (f as { bytes: Uint8Array }).bytes);
    out.push({ type: FrameType.data, stream: first.stream, bytes: concatBytes(parts) });
    i = j - 1;
  }
  return out;
}
