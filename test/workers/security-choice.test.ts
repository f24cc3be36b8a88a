/**
 * Issue #23 item 4: the edge, not the VNC server, decides which security types a viewer may
 * choose. The connector here plays a lenient VNC server that offers None only and would take a
 * viewer's choice of VNC auth, and the 16 bytes after it, at face value: those bytes carry a
 * ClientInit with shared = 0 and a KeyEvent. Nothing of it may reach the server, for any viewer,
 * also when the object hibernated between the offer and the choice.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeData, encodeOpenOk, type Frame, FrameType } from "../../shared/protocol/frames.ts";
import { hibernate } from "./hibernate.ts";
import { call, createSite, openBrowser, signIn, type TestConnector, welcomedConnector } from "./helpers.ts";

const enc = new TextEncoder();
const KEY_EVENT = [4, 1, 0, 0, 0, 0, 0xff, 0x0d]; // Return, pressed

let n = 0;
async function lenientConsole(viewOnly: boolean, protocols?: string) {
  const cookie = await signIn();
  const site = `secchoice${++n}`;
  const connector = await welcomedConnector(await createSite(cookie, site));
  const link = (await (await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", viewOnly }, cookie)).json()) as { wsUrl: string };
  const viewer = await openBrowser(link.wsUrl, protocols);
  const open = await connector.nextFrame();
  connector.send(encodeOpenOk(open.stream));
  return { connector, viewer, stream: open.stream, stub: env.SITE.get(env.SITE.idFromName(site)) };
}

/** Every frame the "server" (the connector) receives until the edge has been quiet for a moment. */
async function framesUntilQuiet(connector: TestConnector): Promise<Frame[]> {
  const seen: Frame[] = [];
  for (;;) {
    const f = await connector.nextFrame(400).catch(() => null);
    if (!f) return seen;
    seen.push(f);
  }
}

describe("a viewer may only choose a security type the server offered", () => {
  for (const [label, viewOnly, protocols] of [
    ["view-only plain viewer", true, undefined],
    ["full-control plain viewer", false, undefined],
    ["view-only credit viewer", true, "porthole.credit.v1"],
  ] as const) {
    it(`${label}: closed with the reason, and the smuggled ClientInit and KeyEvent never reach the server`, async () => {
      const { connector, viewer, stream, stub } = await lenientConsole(viewOnly, protocols);
      connector.send(encodeData(stream, enc.encode("RFB 003.008\n")));
      connector.send(encodeData(stream, Uint8Array.from([1, 1]))); // one type offered: None
      let got = 0;
      while (got < 14) {
        const m = await viewer.next();
        if (typeof m !== "string") got += m.byteLength;
      }
      viewer.ws.send(enc.encode("RFB 003.008\n"));
      // The object sleeps between the offer and the choice: the offer must survive it.
      await hibernate(stub);
      // VNC auth (2), then its "response": ClientInit shared = 0, a KeyEvent, padding.
      viewer.ws.send(Uint8Array.from([2, 0, ...KEY_EVENT, 0, 0, 0, 0, 0, 0, 0]));
      const closed = await viewer.closedWith();
      expect(closed.code).toBe(CloseCode.badRequest);
      expect(closed.reason).toMatch(/security type 2, which the VNC server did not offer/);
      const frames = await framesUntilQuiet(connector);
      const up = frames.filter((f) => f.type === FrameType.data && f.stream === stream).flatMap((f) => [...(f as { bytes: Uint8Array }).bytes]);
      // Only the viewer's version went up: no choice, no ClientInit, no key.
      expect(up).toEqual([...enc.encode("RFB 003.008\n")]);
      expect(frames.some((f) => f.type === FrameType.close && f.stream === stream)).toBe(true);
    });
  }
});
