/**
 * permessage-deflate is the edge's decision, not the client's: by default the 101 of a console
 * socket or a connector tunnel carries a Sec-WebSocket-Extensions value that offers nothing, so the
 * runtime does not accept a client's deflate offer (the runtime's negotiation itself is checked
 * end to end in test/e2e/compression.test.ts).
 */
import { describe, expect, it } from "vitest";
import { FrameType } from "../../shared/protocol/frames.ts";
import { NO_EXTENSIONS } from "../../worker/relay/sockets.ts";
import { createSite, openConsole, signIn, upgrade, welcomedConnector } from "./helpers.ts";

const OFFER = { "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits" };

describe("permessage-deflate", () => {
  it("a console socket offered deflate is answered with no extension, and works", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "deflate");
    const connector = await welcomedConnector(token);
    const url = new URL((await openConsole(cookie, "deflate")).wsUrl);
    const res = await upgrade(url.pathname + url.search, OFFER);
    expect(res.status).toBe(101);
    expect(res.headers.get("Sec-WebSocket-Extensions")).toBe(NO_EXTENSIONS);
    res.webSocket!.accept();
    expect((await connector.nextFrame()).type).toBe(FrameType.open); // the console goes on
  });

  it("a connector tunnel offered deflate is answered with no extension", async () => {
    const cookie = await signIn();
    const token = await createSite(cookie, "deflate-tunnel");
    const res = await upgrade("/connect", { ...OFFER, Authorization: `Bearer ${token}` });
    expect(res.status).toBe(101);
    expect(res.headers.get("Sec-WebSocket-Extensions")).toBe(NO_EXTENSIONS);
    res.webSocket!.accept();
    res.webSocket!.close(1000, "done");
  });
});
