/** Big-endian integers as RFB sends them, read from a header wherever it lies (array or input). */

export function u16(b: ArrayLike<number>, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}
export function u32(b: ArrayLike<number>, at: number): number {
  return ((b[at]! << 24) >>> 0) + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}
export function s32(b: ArrayLike<number>, at: number): number {
  return u32(b, at) | 0;
}
export function be32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n);
  return b;
}
