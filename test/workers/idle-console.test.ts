/**
 * A console left idle while the site object hibernates must go on exactly where it was: credit
 * in both directions, what was owed to the connector, and queued input all survive any number of
 * wakes. The object only hibernates once nothing is pending, so each test writes the stream book's
 * deferred state first (`hibernate`), as the runtime would wait for it, before evicting.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encodeCredit, encodeData, encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import { CREDIT_CHUNK_BYTES, CREDIT_SUBPROTOCOL, MAX_DATA_BYTES, STREAM_WINDOW_BYTES } from "../../shared/protocol/limits.ts";
import { hibernate } from "./hibernate.ts";
import { createSite, creditFrames, openBrowser, openConsole, signIn, type TestConnector, type TestSocket, welcomedConnector } from "./helpers.ts";

let n = 0;
async function console_(protocols?: string) {
  const cookie = await signIn();
  const site = `idle${++n}`;
  const connector = await welcomedConnector(await createSite(cookie, site));
  const browser = await openBrowser((await openConsole(cookie, site)).wsUrl, protocols);
  const open = await connector.nextFrame();
  connector.send(encodeOpenOk(open.stream));
  const stub = env.SITE.get(env.SITE.idFromName(site));
  return { connector, browser, stream: open.stream, stub };
}

async function sendDown(connector: TestConnector, stream: number, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes; sent += MAX_DATA_BYTES) connector.send(encodeData(stream, new Uint8Array(Math.min(MAX_DATA_BYTES, bytes - sent))));
}

async function receive(browser: TestSocket, bytes: number): Promise<void> {
  let got = 0;
  while (got < bytes) got += ((await browser.next()) as ArrayBuffer).byteLength;
  expect(got).toBe(bytes);
}

describe("an idle console survives hibernation", () => {
  it("credit-mode viewer: the window goes on exactly across several wakes", async () => {
    const { connector, browser, stream, stub } = await console_(CREDIT_SUBPROTOCOL);
    // Some bytes in flight and some acknowledged when the object goes to sleep, several times over.
    for (let round = 0; round < 3; round++) {
      await sendDown(connector, stream, 300 * 1024);
      await receive(browser, 300 * 1024);
      browser.ws.send(String(300 * 1024));
      expect(await creditFrames(connector, 300 * 1024)).toBe(300 * 1024);
      await hibernate(stub);
    }
    // A full window after waking is within the connector's rights: the console keeps going.
    await sendDown(connector, stream, STREAM_WINDOW_BYTES);
    await receive(browser, STREAM_WINDOW_BYTES);
    browser.ws.send(String(STREAM_WINDOW_BYTES));
    expect(await creditFrames(connector, STREAM_WINDOW_BYTES)).toBe(STREAM_WINDOW_BYTES);
    expect(browser.closed).toBeNull();
  });

  it("credit-mode viewer: bytes unacknowledged at sleep can still be acknowledged after waking", async () => {
    const { connector, browser, stream, stub } = await console_(CREDIT_SUBPROTOCOL);
    await sendDown(connector, stream, 200 * 1024);
    await receive(browser, 200 * 1024);
    await hibernate(stub);
    browser.ws.send(String(200 * 1024));
    expect(await creditFrames(connector, 200 * 1024)).toBe(200 * 1024);
  });

  it("plain viewer: credit owed to the connector at sleep is not lost", async () => {
    const { connector, browser, stream, stub } = await console_();
    const total = 3 * CREDIT_CHUNK_BYTES;
    // 1.5 chunks before sleeping: one chunk credited, half a chunk owed.
    await sendDown(connector, stream, CREDIT_CHUNK_BYTES + CREDIT_CHUNK_BYTES / 2);
    await receive(browser, CREDIT_CHUNK_BYTES + CREDIT_CHUNK_BYTES / 2);
    await hibernate(stub);
    await sendDown(connector, stream, total - (CREDIT_CHUNK_BYTES + CREDIT_CHUNK_BYTES / 2));
    await receive(browser, total - (CREDIT_CHUNK_BYTES + CREDIT_CHUNK_BYTES / 2));
    // Every byte forwarded came back as credit: nothing owed was forgotten at the wake.
    expect(await creditFrames(connector, total)).toBe(total);
  });

  it("input waiting for the connector's credit is delivered after a wake", async () => {
    const { connector, browser, stream, stub } = await console_();
    browser.ws.send(new Uint8Array(STREAM_WINDOW_BYTES));
    let forwarded = 0;
    while (forwarded < STREAM_WINDOW_BYTES) {
      const f = await connector.nextFrame();
      if (f.type === FrameType.data) forwarded += f.bytes.length;
    }
    browser.ws.send(new Uint8Array([7, 7, 7])); // no credit left: waits in the object
    await hibernate(stub);
    connector.send(encodeCredit(stream, 3));
    const released = await connector.nextFrame();
    expect(released).toMatchObject({ type: FrameType.data, stream });
    expect((released as { bytes: Uint8Array }).bytes).toEqual(new Uint8Array([7, 7, 7]));
  });
});
