/** Watching now: everyone on a VM's console hears who is on it, live, as consoles open and close; the lists say the same. */
import { describe, expect, it } from "vitest";
import { encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import { CREDIT_SUBPROTOCOL } from "../../shared/protocol/limits.ts";
import { call, createSite, openBrowser, openConsole, signIn, type TestConnector, type TestSocket, userSession, welcomedConnector } from "./helpers.ts";

type Notice = { type: string; people: { name: string; viewOnly: boolean }[]; joined?: string; left?: string };

/** The next watching notice on a credit viewer's socket (other notices skipped). */
async function nextWatching(s: TestSocket): Promise<Notice> {
  for (;;) {
    const m = await s.next();
    if (typeof m === "string" && (JSON.parse(m) as { type: string }).type === "watching") return JSON.parse(m) as Notice;
  }
}

async function joined(wsUrl: string, connector: TestConnector, protocols?: string): Promise<TestSocket> {
  const s = await openBrowser(wsUrl, protocols);
  s.keepWatching = true;
  const open = await connector.nextFrame();
  expect(open.type).toBe(FrameType.open);
  connector.send(encodeOpenOk(open.stream));
  return s;
}

describe("Watching now", () => {
  it("tells everyone on the VM's console who is there, when someone joins and leaves; Sessions and Share links say the same", async () => {
    const admin = await signIn();
    const ana = await userSession(admin, "ana-watch", "operator");
    const site = "watching1";
    const connector = await welcomedConnector(await createSite(admin, site));
    const mine = await joined((await openConsole(admin, site)).wsUrl, connector, CREDIT_SUBPROTOCOL);
    expect(await nextWatching(mine)).toMatchObject({ people: [{ name: "admin", viewOnly: false }], joined: "admin" });

    const link = (await (await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", note: "for Bo" }, ana)).json()) as { wsUrl: string };
    const bo = await joined(link.wsUrl, connector, CREDIT_SUBPROTOCOL);
    const both = { people: [{ name: "admin" }, { name: "link: for Bo", viewOnly: true }], joined: "link: for Bo" };
    expect(await nextWatching(mine)).toMatchObject(both);
    expect(await nextWatching(bo)).toMatchObject(both);

    const sessions = (await (await call("GET", "/api/sessions", undefined, admin)).json()) as { site: string; watcher: string }[];
    expect(sessions.filter((s) => s.site === site).map((s) => s.watcher).sort()).toEqual(["admin", "link: for Bo"]);
    const links = (await (await call("GET", "/api/links", undefined, ana)).json()) as { site: string; watchers: string[] }[];
    expect(links.find((l) => l.site === site)?.watchers).toEqual(["admin", "link: for Bo"]);

    bo.ws.close(1000, "bye");
    expect(await nextWatching(mine)).toMatchObject({ people: [{ name: "admin" }], left: "link: for Bo" });
  });
});
