/** GET / DELETE /api/sessions: who is watching what, and ending it. */
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeData, encodeOpenOk } from "../../shared/protocol/frames.ts";
import { call, createSite, openBrowser, openConsole, signIn, userSession, welcomedConnector } from "./helpers.ts";

type Session = { id: string; site: string; vm: string; user?: string; linkId?: string; viewOnly: boolean; bytesDown: number; bytesUp: number };

describe("live consoles", () => {
  it("lists consoles with who opened them and bytes each way; an operator sees only theirs and their links'", async () => {
    const admin = await signIn();
    const token = await createSite(admin, "sess1");
    const connector = await welcomedConnector(token);
    const ops = await userSession(admin, "ops-sess", "operator");
    const other = await userSession(admin, "other-sess", "operator");

    const mine = await openBrowser((await openConsole(ops, "sess1")).wsUrl);
    const open = await connector.nextFrame();
    connector.send(encodeOpenOk(open.stream));
    connector.send(encodeData(open.stream, new Uint8Array(1234)));
    await mine.next();
    mine.ws.send(new Uint8Array(7));
    await connector.nextFrame();
    const link = (await (await call("POST", "/api/links", { site: "sess1", hypervisor: "lab", vm: "desk" }, ops)).json()) as { id: string; wsUrl: string };
    await openBrowser(link.wsUrl);
    await connector.nextFrame();
    await openBrowser((await openConsole(other, "sess1")).wsUrl);
    await connector.nextFrame();

    const all = (await (await call("GET", "/api/sessions", undefined, admin)).json()) as Session[];
    expect(all.filter((s) => s.site === "sess1")).toHaveLength(3);
    const seen = (await (await call("GET", "/api/sessions", undefined, ops)).json()) as Session[];
    expect(seen.map((s) => s.user ?? `link:${s.linkId}`).sort()).toEqual([`link:${link.id}`, "ops-sess"].sort());
    const own = seen.find((s) => s.user === "ops-sess")!;
    expect(own).toMatchObject({ vm: "desk", viewOnly: false, bytesDown: 1234, bytesUp: 7 });
  });

  it("End session closes the console with who ended it; nobody else's can be ended", async () => {
    const admin = await signIn();
    const token = await createSite(admin, "sess2");
    const connector = await welcomedConnector(token);
    const ops = await userSession(admin, "ops-sess2", "operator");
    const viewer = await openBrowser((await openConsole(ops, "sess2")).wsUrl);
    const open = await connector.nextFrame();
    const [session] = (await (await call("GET", "/api/sessions", undefined, ops)).json()) as Session[];
    const stranger = await userSession(admin, "stranger-sess2", "operator");
    expect((await call("DELETE", `/api/sessions/${session!.id}`, undefined, stranger)).status).toBe(404);
    expect((await call("DELETE", "/api/sessions/sess2.notanumber", undefined, admin)).status).toBe(400);
    expect(viewer.closed).toBeNull();

    expect((await call("DELETE", `/api/sessions/${session!.id}`, undefined, admin)).status).toBe(204);
    const closed = await viewer.closedWith();
    expect(closed).toEqual({ code: CloseCode.terminated, reason: "This console was ended by admin." });
    let f;
    do f = await connector.nextFrame();
    while (f.type !== 0x15);
    expect(f).toMatchObject({ stream: open.stream, code: CloseCode.terminated });
    expect((await call("DELETE", `/api/sessions/${session!.id}`, undefined, admin)).status).toBe(404);
  });
});
