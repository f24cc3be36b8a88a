/**
 * fast-check generators of RFB streams for the property tests (each with the bytes it must yield),
 * and the properties' run settings.
 *
 * The properties run RFB_FUZZ_RUNS cases each (default 10,000: a few seconds per file on a quiet
 * machine). A longer run (1,000,000 cases: about 6 minutes):
 *   RFB_FUZZ_RUNS=1000000 npx vitest run --config vitest.config.ts --project unit worker/relay/rfb/ --testTimeout=0
 */
import fc from "fast-check";
import {
  bell,
  clientFence,
  colourMap,
  compact,
  cutText,
  enableCU,
  endCU,
  fbu,
  fbur,
  fill,
  FRAMEABLE,
  gii,
  keyEvent,
  PF32,
  pointer,
  pointerExt,
  qemuAudio,
  qemuAudioServer,
  qemuKey,
  rewritten,
  serverCut,
  serverFence,
  setDesktopSize,
  setEncodings,
  setPixelFormat,
  TUNING,
  u32,
  UNFRAMEABLE,
  xvp,
  xvpServer,
  type Bytes,
  type Op,
  type Rect,
  type Security,
  type Version,
} from "./rfb-test-kit.ts";

export const RUNS = Number(process.env.RFB_FUZZ_RUNS ?? 10_000);
/** Each property takes 0.5 to 4 s at 10,000 cases on a quiet machine; this one is shared. */
export const PROPERTY_TIMEOUT_MS = Math.max(60_000, RUNS * 10);

/** A generated viewer message with what a view-only tracker must forward for it. */
export type ClientGen = { kind: number; a: number; b: number; encs: number[] };
export const clientGen: fc.Arbitrary<ClientGen> = fc.record({
  kind: fc.integer({ min: 0, max: 17 }),
  a: fc.nat(255),
  b: fc.nat(300),
  encs: fc.array(fc.constantFrom(...FRAMEABLE, ...TUNING, ...UNFRAMEABLE), { maxLength: 12 }),
});

/**
 * Turns generated messages into ops, tracking what the viewer asked and the server confirmed
 * (ExtendedMouseButtons), and the exact bytes a view-only tracker forwards.
 */
export function viewOnlyOps(gens: ClientGen[]): { ops: Op[]; out: Bytes } {
  const ops: Op[] = [];
  const out: Bytes = [];
  let asked = false;
  let confirmed = false;
  const pass = (m: Bytes) => {
    ops.push(["c", m]);
    out.push(...m);
  };
  const drop = (m: Bytes) => ops.push(["c", m]);
  for (const g of gens) {
    switch (g.kind) {
      case 0: pass(setPixelFormat(PF32)); break;
      case 1: {
        const encs = g.a & 1 ? [...g.encs, -316] : g.encs;
        ops.push(["c", setEncodings(encs)]);
        out.push(...setEncodings(rewritten(encs)));
        asked = encs.includes(-316);
        if (!asked) confirmed = false;
        break;
      }
      case 2: pass(fbur(g.a & 1)); break;
      case 3: pass(enableCU()); break;
      case 4: pass(clientFence(g.a << 24, fill(g.b % 65, 1))); break;
      case 5: drop(keyEvent()); break;
      case 6: drop(asked && confirmed && g.a & 0x80 ? pointerExt(g.a, g.b & 3) : pointer(g.a)); break;
      case 7: drop(cutText(g.b, (g.a & 1) === 1)); break;
      case 8: drop(xvp()); break;
      case 9: drop(setDesktopSize(g.a % 4)); break;
      case 10: drop(gii(g.b, (g.a & 1) === 1)); break;
      case 11: drop(qemuKey()); break;
      case 12: drop(qemuAudio((g.a % 3) as 0 | 1 | 2)); break;
      case 13: // the server confirms extended mouse buttons
        ops.push(["s", fbu([{ enc: -316, w: 0, h: 0, body: [] }])]);
        confirmed = true;
        break;
      case 14: ops.push(["s", fbu([{ enc: 0, w: g.a % 5, h: 3, body: fill((g.a % 5) * 3 * 4) }])]); break;
      case 15: ops.push(["s", serverCut(g.b)]); break;
      case 16: pass(setPixelFormat(PF32)); break;
      case 17: ops.push(["s", bell()]); break;
    }
  }
  return { ops, out };
}

export const cutsArb = fc.array(fc.nat(4000), { maxLength: 30 });
export const resumeArb = fc.array(fc.nat(60), { maxLength: 6 });
export const verArb = fc.constantFrom<Version>(3, 7, 8);
export const secArb = fc.constantFrom<Security>(1, 2);

// ---- generated console messages
export type ServerGen = { kind: number; rects: RectGen[]; n: number; last: boolean };
export type RectGen = { enc: number; w: number; h: number; p: number[] };
export const rectGen: fc.Arbitrary<RectGen> = fc.record({
  enc: fc.integer({ min: 0, max: 27 }),
  w: fc.nat(36),
  h: fc.nat(36),
  p: fc.array(fc.nat(255), { minLength: 64, maxLength: 64 }),
});
export const serverGen: fc.Arbitrary<ServerGen> = fc.record({
  kind: fc.integer({ min: 0, max: 9 }),
  rects: fc.array(rectGen, { maxLength: 5 }),
  n: fc.nat(300),
  last: fc.boolean(),
});

export function serverMessage(g: ServerGen, bpp: number, tp: number): Bytes {
  switch (g.kind) {
    case 0:
    case 1:
    case 2:
      return fbu(g.rects.map((r) => rect(r, bpp, tp)), g.last);
    case 3: return colourMap(g.n % 20);
    case 4: return bell();
    case 5: return serverCut(g.n, g.last);
    case 6: return endCU();
    case 7: return serverFence((g.n & 1) << 31, fill(g.n % 65, 2));
    case 8: return xvpServer(g.n & 1);
    default: return qemuAudioServer((g.n % 3) as 0 | 1 | 2, g.n);
  }
}

/** One rectangle of a generated encoding, sized small; `p` feeds the choices. */
export function rect(g: RectGen, bpp: number, tp: number): Rect {
  const small = (k: number, max: number) => g.p[k]! % (max + 1);
  const w = g.w;
  const h = g.h;
  switch (g.enc) {
    case 0: { const rw = small(0, 8), rh = small(1, 8); return { enc: 0, w: rw, h: rh, body: fill(rw * rh * bpp) }; }
    case 1: return { enc: 1, w, h, body: fill(4) };
    case 2: { const n = small(0, 4); return { enc: 2, w, h, body: [...u32(n), ...fill(bpp), ...fill(n * (bpp + 8))] }; }
    case 3: { // Hextile, tile by tile
      const body: Bytes = [];
      let k = 0;
      for (let ty = 0; ty < h; ty += 16)
        for (let tx = 0; tx < w; tx += 16) {
          const tw = Math.min(16, w - tx), th = Math.min(16, h - ty);
          const sub = g.p[k++ % 64]! & 0x1f;
          body.push(sub);
          if (sub & 1) body.push(...fill(tw * th * bpp));
          else {
            if (sub & 2) body.push(...fill(bpp));
            if (sub & 4) body.push(...fill(bpp));
            if (sub & 8) {
              const n = g.p[k++ % 64]! % 6;
              body.push(n, ...fill(n * (sub & 16 ? bpp + 2 : 2)));
            }
          }
        }
      return { enc: 5, w, h, body };
    }
    case 4: case 5: case 6: { const n = small(0, 200); return { enc: [6, 16, -307][g.enc - 4]!, w, h, body: [...u32(n), ...fill(n)] }; }
    case 7: { const n = small(0, 200); return { enc: 50, w, h, body: [...u32(n), ...u32(g.p[1]!), ...fill(n)] }; }
    case 8: case 9: case 10: case 11: case 12: case 13: { // Tight and TightPNG
      const enc = g.p[0]! & 1 ? 7 : -260;
      const resets = g.p[1]! & 0x0f;
      const method = g.enc - 8; // fill, jpeg, png, copy, palette, gradient
      if (method === 0) return { enc, w, h, body: [0x80 | resets, ...fill(tp)] };
      if (method === 1 || method === 2) {
        const n = g.p[2]! % 16 ? small(3, 200) : 16384 + small(3, 50); // 3-byte lengths now and then
        return { enc, w, h, body: [(method === 1 ? 0x90 : 0xa0) | resets, ...compact(n), ...fill(n)] };
      }
      const rw = small(4, 12), rh = small(5, 6);
      const stream = (g.p[6]! & 3) << 4;
      let head: Bytes;
      let size: number;
      if (method === 3) {
        const explicit = g.p[7]! & 1;
        head = explicit ? [0x40 | stream | resets, 0] : [stream | resets];
        size = rw * rh * tp;
      } else if (method === 4) {
        const colours = 2 + small(8, 254);
        head = [0x40 | stream | resets, 1, colours - 1, ...fill(colours * tp)];
        size = (colours <= 2 ? Math.floor((rw + 7) / 8) : rw) * rh;
      } else {
        head = [0x40 | stream | resets, 2];
        size = rw * rh * tp;
      }
      const data = size < 12 ? fill(size) : (() => { const n = small(9, 150); return [...compact(n), ...fill(n)]; })();
      return { enc, w: rw, h: rh, body: [...head, ...data] };
    }
    case 14: { const cw = small(0, 10), ch = small(1, 10); return { enc: -239, w: cw, h: ch, body: fill(cw * ch * bpp + Math.floor((cw + 7) / 8) * ch) }; }
    case 15: { const cw = small(0, 10), ch = small(1, 10); return { enc: -240, w: cw, h: ch, body: cw && ch ? fill(6 + 2 * Math.floor((cw + 7) / 8) * ch) : [] }; }
    case 16: { const n = small(0, 3); return { enc: -308, w, h, body: [n, 0, 0, 0, ...fill(16 * n)] }; }
    case 17: return { enc: -261, w, h, body: [g.p[0]! & 7] };
    case 18: { const cw = small(0, 6), ch = small(1, 6); return { enc: 0x574d5664, w: cw, h: ch, body: [0, 0, ...fill(2 * cw * ch * bpp)] }; }
    case 19: { const cw = small(0, 6), ch = small(1, 6); return { enc: 0x574d5664, w: cw, h: ch, body: [1, 0, ...fill(cw * ch * 4)] }; }
    default: return { enc: [-223, -257, -258, -259, -312, -313, -316, -223][g.enc - 20]!, w, h, body: [] };
  }
}
