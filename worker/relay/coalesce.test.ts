import { describe, expect, it } from "vitest";
import { type Frame, FrameType } from "../../shared/protocol/frames.ts";
import { coalesceData } from "./coalesce.ts";

const data = (stream: number, ...bytes: number[]): Frame => ({ type: FrameType.data, stream, bytes: Uint8Array.from(bytes) });

describe("coalescing DATA frames", () => {
  it("joins runs of one stream's DATA frames and keeps everything else in order", () => {
    const credit: Frame = { type: FrameType.credit, stream: 1, bytes: 9 };
    const out = coalesceData([data(1, 1), data(1, 2, 3), data(2, 4), credit, data(1, 5), data(1, 6)]);
    expect(out).toEqual([data(1, 1, 2, 3), data(2, 4), credit, data(1, 5, 6)]);
  });

  it("never merges across streams", () => {
    const frames = [data(1, 1), data(2, 2), data(1, 3)];
    expect(coalesceData(frames)).toEqual(frames);
  });
});
