import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import {
  encodeClose,
  encodeCredit,
  encodeData,
  encodeJson,
  encodeOpenOk,
  type Frame,
  FrameType,
} from "../../shared/protocol/frames.ts";
import {
  CREDIT_CHUNK_BYTES,
  CREDIT_SUBPROTOCOL,
  MAX_DATA_BYTES,
  MAX_DATA_BYTES_ACCEPTED,
  STREAM_WINDOW_BYTES,
} from "../../shared/protocol/limits.ts";
import {
  connectConnector,
  creditFrames,
  createSite,
  defaultHello,
  openBrowser,
  openConsole,
  signIn,
  upgrade,
  welcomedConnector,
} from "./helpers.ts";

let sites = 0;
async function setup() {
  const cookie = await signIn();
  const site = `site${++sites}`;
  const token = await createSite(cookie, site);
  const connector = await welcomedConnector(token);
  return { cookie, site, token, connector };
}

/** Opens a console and plays the connector's side up to OPEN_OK. */
async function pairedConsole(protocols?: string) {
  const s = await setup();
  const { wsUrl } = await openConsole(s.cookie, s.site);
  const browser = await openBrowser(wsUrl, protocols);
  const open = await s.connector.nextFrame();
  expect(open.type).toBe(FrameType.open);
  s.connector.send(encodeOpenOk(open.stream));
  return { ...s, browser, stream: open.stream, wsUrl };
}

describe("connector handshake", () => {
  it("welcomes a connector that speaks protocol 1 with the window and frame cap", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "hs1");
    const c = await connectConnector(token);
    const welcome = (await c.nextFrame()) as Extract<Frame, { json: unknown }>;
    expect(welcome.type).toBe(FrameType.welcome);
    expect(welcome.json).toMatchObject({
      protocol: 1,
      site: "hs1",
      windowBytes: STREAM_WINDOW_BYTES,
      maxDataBytes: MAX_DATA_BYTES_ACCEPTED,
    });
  });

  it("refuses an incompatible connector with a clear reason", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "hs2");
    const c = await connectConnector(token, { ...defaultHello(), protocols: [7, 8] });
    const closed = await c.closedWith();
    expect(closed.code).toBe(CloseCode.upgradeRequired);
    expect(closed.reason).toMatch(/not supported.*speaks 1/);
  });

  it("closes the tunnel with a protocol error on malformed, truncated or oversized frames", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "hs3");
    const cases: Uint8Array[] = [
      new Uint8Array([0x7f, 0, 0, 0, 0, 0, 0, 0, 0]), // unknown type
      encodeJson(FrameType.hello, 0, defaultHello()).subarray(0, 20), // truncated
      (() => {
        const f = new Uint8Array(9);
        new DataView(f.buffer).setUint8(0, FrameType.data);
        new DataView(f.buffer).setUint32(5, MAX_DATA_BYTES_ACCEPTED + 1); // oversized claim
        return f;
      })(),
    ];
    for (const bad of cases) {
      const res = await upgrade("/connect", { Authorization: `Bearer ${token}` });
      const c = new (await import("./helpers.ts")).TestConnector(res.webSocket!);
      c.send(bad);
      const closed = await c.closedWith();
      expect(closed.code).toBe(CloseCode.protocolError);
      expect(closed.reason).toMatch(/protocol error/);
    }
    // The object survived: a good connector still gets in.
    const good = await welcomedConnector(token);
    expect(good.closed).toBeNull();
  });

  it("requires HELLO before anything else", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "hs4");
    const res = await upgrade("/connect", { Authorization: `Bearer ${token}` });
    const c = new (await import("./helpers.ts")).TestConnector(res.webSocket!);
    c.send(encodeData(5, new Uint8Array([1, 2, 3])));
    expect((await c.closedWith()).reason).toMatch(/first frame must be HELLO/);
  });
});

describe("pairing browsers with streams", () => {
  it("relays bytes both ways on one stream and tells the connector when the viewer leaves", async () => {
    const { connector, browser, stream } = await pairedConsole();
    connector.send(encodeData(stream, new TextEncoder().encode("RFB 003.008\n")));
    const greeting = await browser.next();
    expect(new TextDecoder().decode(greeting as ArrayBuffer)).toBe("RFB 003.008\n");

    browser.ws.send(new TextEncoder().encode("RFB 003.008\n"));
    const up = await connector.nextFrame();
    expect(up).toMatchObject({ type: FrameType.data, stream });
    expect(new TextDecoder().decode((up as { bytes: Uint8Array }).bytes)).toBe("RFB 003.008\n");

    browser.ws.close(1000, "done");
    const close = await connector.nextFrame();
    expect(close).toMatchObject({ type: FrameType.close, stream });
  });

  it("names the hypervisor and VM in OPEN, never an address", async () => {
    const s = await setup();
    const { wsUrl } = await openConsole(s.cookie, s.site);
    await openBrowser(wsUrl);
    const open = (await s.connector.nextFrame()) as Extract<Frame, { json: unknown }>;
    expect(open.json).toEqual({ hypervisor: "lab", vm: "desk" });
  });

  it("closes the browser with the connector's code and reason when the console cannot open", async () => {
    const s = await setup();
    const { wsUrl } = await openConsole(s.cookie, s.site);
    const browser = await openBrowser(wsUrl);
    const open = await s.connector.nextFrame();
    s.connector.send(encodeClose(FrameType.openError, open.stream, CloseCode.upstreamFailed, "VM refused the connection"));
    expect(await browser.closedWith()).toEqual({ code: CloseCode.upstreamFailed, reason: "VM refused the connection" });
  });

  it("keeps a ticket single use and refuses unknown ones", async () => {
    const { browser, wsUrl } = await pairedConsole();
    expect(browser.closed).toBeNull();
    const again = await openBrowser(wsUrl);
    expect(await again.closedWith()).toMatchObject({ code: CloseCode.gone, reason: expect.stringMatching(/already used/) });
    const forged = await openBrowser(wsUrl.replace(/ticket=[^&]+/, "ticket=forged"));
    expect((await forged.closedWith()).code).toBe(CloseCode.unauthorized);
  });

  it("refuses browser upgrades from a foreign origin", async () => {
    const s = await setup();
    const { wsUrl } = await openConsole(s.cookie, s.site);
    const url = new URL(wsUrl);
    const res = await upgrade(url.pathname + url.search, { Origin: "https://evil.example" });
    expect(res.status).toBe(403);
    // The ticket was not spent by the refused attempt.
    const ok = await openBrowser(wsUrl);
    expect((await s.connector.nextFrame()).type).toBe(FrameType.open);
    expect(ok.closed).toBeNull();
  });

  it("closes every console of a connector that goes away, with a reason", async () => {
    const { connector, browser } = await pairedConsole();
    connector.ws.close(1001, "restarting");
    const closed = await browser.closedWith();
    expect(closed.code).toBe(CloseCode.connectorOffline);
    expect(closed.reason).toMatch(/connector went offline/);
  });
});

describe("flow control", () => {
  it("plain browser: returns credit to the connector as bytes are forwarded", async () => {
    const { connector, browser, stream } = await pairedConsole();
    const chunk = new Uint8Array(MAX_DATA_BYTES);
    const frames = CREDIT_CHUNK_BYTES / MAX_DATA_BYTES;
    for (let i = 0; i < frames; i++) connector.send(encodeData(stream, chunk));
    expect(await creditFrames(connector, CREDIT_CHUNK_BYTES)).toBe(CREDIT_CHUNK_BYTES);
    let received = 0;
    while (received < CREDIT_CHUNK_BYTES) received += ((await browser.next()) as ArrayBuffer).byteLength;
    expect(received).toBe(CREDIT_CHUNK_BYTES);
  });

  it("credit-mode browser: credit reaches the connector only as the browser acknowledges, never more than sent", async () => {
    const { connector, browser, stream } = await pairedConsole(CREDIT_SUBPROTOCOL);
    expect(browser.protocol).toBe(CREDIT_SUBPROTOCOL);
    connector.send(encodeData(stream, new Uint8Array(1000)));
    await browser.next();
    // Nothing comes back until the browser says it consumed the bytes.
    browser.ws.send("999999");
    const credit = await connector.nextFrame();
    expect(credit).toEqual({ type: FrameType.credit, stream, bytes: 1000 });
  });

  it("takes DATA frames as large as WELCOME announces, each to the viewer as one message, within the window", async () => {
    const { connector, browser, stream } = await pairedConsole(CREDIT_SUBPROTOCOL);
    const frames = STREAM_WINDOW_BYTES / MAX_DATA_BYTES_ACCEPTED;
    for (let i = 0; i < frames; i++) {
      const bytes = new Uint8Array(MAX_DATA_BYTES_ACCEPTED).map((_, j) => (i * 31 + j) & 0xff);
      connector.send(encodeData(stream, bytes));
      expect(new Uint8Array((await browser.next()) as ArrayBuffer)).toEqual(bytes);
    }
    // A connector that still sends 32 KiB frames (older builds) is read as before; here it
    // overruns the window by one frame and loses the stream.
    connector.send(encodeData(stream, new Uint8Array(MAX_DATA_BYTES)));
    const closed = await browser.closedWith();
    expect(closed.code).toBe(CloseCode.internal);
    expect(closed.reason).toMatch(/overran the stream window/);
  });

  it("credit-mode browser: a connector that overruns the window loses the stream", async () => {
    const { connector, browser, stream } = await pairedConsole(CREDIT_SUBPROTOCOL);
    const chunk = new Uint8Array(MAX_DATA_BYTES);
    for (let i = 0; i <= STREAM_WINDOW_BYTES / MAX_DATA_BYTES; i++) connector.send(encodeData(stream, chunk));
    const closed = await browser.closedWith();
    expect(closed.code).toBe(CloseCode.internal);
    expect(closed.reason).toMatch(/overran the stream window/);
  });

  it("queues browser input beyond the connector's credit, then cuts a browser that floods", async () => {
    const { connector, browser, stream } = await pairedConsole();
    const big = new Uint8Array(STREAM_WINDOW_BYTES);
    browser.ws.send(big); // exactly the window: forwarded
    let forwarded = 0;
    while (forwarded < STREAM_WINDOW_BYTES) {
      const f = await connector.nextFrame();
      if (f.type === FrameType.data) {
        expect(f.stream).toBe(stream);
        expect(f.bytes.length).toBeLessThanOrEqual(MAX_DATA_BYTES);
        forwarded += f.bytes.length;
      }
    }
    browser.ws.send(new Uint8Array(10)); // no credit left: held back
    connector.send(encodeCredit(stream, 10));
    const released = await connector.nextFrame();
    expect(released).toMatchObject({ type: FrameType.data, stream });
    browser.ws.send(big);
    browser.ws.send(big); // more than a window waiting: cut
    const closed = await browser.closedWith();
    expect(closed.code).toBe(CloseCode.tooMuchInput);
  });

  it("a stalled viewer's full window never holds back another stream's bytes in the object", async () => {
    const s = await setup();
    const a = await openConsole(s.cookie, s.site);
    const b = await openConsole(s.cookie, s.site);
    // A returns credit and never does: once its window is full nothing more may flow to it.
    const browserA = await openBrowser(a.wsUrl, CREDIT_SUBPROTOCOL);
    const openA = await s.connector.nextFrame();
    const browserB = await openBrowser(b.wsUrl);
    const openB = await s.connector.nextFrame();
    const { concatBytes } = await import("../../shared/protocol/frames.ts");
    const windowFrames = Array.from({ length: STREAM_WINDOW_BYTES / MAX_DATA_BYTES }, () => encodeData(openA.stream, new Uint8Array(MAX_DATA_BYTES)));
    // One message: A's whole window, then one keystroke-sized frame for B.
    s.connector.send(concatBytes([...windowFrames, encodeData(openB.stream, new Uint8Array([42]))]));
    expect(new Uint8Array((await browserB.next()) as ArrayBuffer)).toEqual(new Uint8Array([42]));
    // A is at its limit and unharmed; B's next byte still passes straight through.
    let got = 0;
    while (got < STREAM_WINDOW_BYTES) got += ((await browserA.next()) as ArrayBuffer).byteLength;
    s.connector.send(encodeData(openB.stream, new Uint8Array([43])));
    expect(new Uint8Array((await browserB.next()) as ArrayBuffer)).toEqual(new Uint8Array([43]));
    expect(browserA.closed).toBeNull();
    // One byte more for A is an overrun: only A is closed.
    s.connector.send(encodeData(openA.stream, new Uint8Array([1])));
    expect((await browserA.closedWith()).code).toBe(CloseCode.internal);
    expect(browserB.closed).toBeNull();
  });
});
