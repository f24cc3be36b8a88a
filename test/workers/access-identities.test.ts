/**
 * Issue 23, item 3: Cloudflare Access identities. ACCESS_DEFAULT_ROLE is operator in this pool's
 * config. Deleting an account never lets the same email back in at the default role; an admin can
 * block an Access identity outright (PATCH /api/users/:email {disabled:true}), seen or not, and
 * lowering one ends what it may no longer do.
 */
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import { accessHeader } from "./access-jwt.ts";
import { call, createSite, openBrowser, signIn, type TestConnector, welcomedConnector } from "./helpers.ts";


let n = 0;
async function setup() {
  const admin = await signIn();
  const site = `ax${++n}`;
  const connector = await welcomedConnector(await createSite(admin, site));
  return { admin, site, connector, email: `person${n}@example.com` };
}

async function fullControl(auth: Record<string, string>, site: string, connector: TestConnector) {
  const res = await call("POST", "/api/consoles", { site, hypervisor: "lab", vm: "desk" }, auth);
  expect(res.status).toBe(201);
  const browser = await openBrowser(((await res.json()) as { wsUrl: string }).wsUrl);
  let open = await connector.nextFrame();
  while (open.type === FrameType.close) open = await connector.nextFrame();
  connector.send(encodeOpenOk(open.stream));
  return browser;
}

describe("Access identities", () => {
  it("a deleted viewer account does not come back through Access at the default role", async () => {
    const { admin, site, email } = await setup();
    expect((await call("POST", "/api/users", { username: email, password: "long enough password", role: "viewer" }, admin)).status).toBe(201);
    const access = await accessHeader(email);
    expect((await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk" }, access)).status).toBe(403); // a viewer
    expect((await call("DELETE", `/api/users/${email}`, undefined, admin)).status).toBe(204);
    expect((await call("GET", "/api/sites", undefined, access)).status).toBe(401);
    expect((await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", viewOnly: false }, access)).status).toBe(401);
    // Listed as a blocked Access identity; an admin may let it in again.
    const listed = (await (await call("GET", "/api/users", undefined, admin)).json()) as { username: string; disabled?: boolean; access?: boolean }[];
    expect(listed.find((u) => u.username === email)).toMatchObject({ disabled: true, access: true, role: "viewer" });
    // Let in again: at its last role, not the default one.
    expect((await call("PATCH", `/api/users/${email}`, { disabled: false }, admin)).status).toBe(200);
    expect((await call("GET", "/api/sites", undefined, access)).status).toBe(200);
    expect((await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk" }, access)).status).toBe(403);
  });

  it("blocks an Access identity never seen before, and one in use at once (consoles close, links end)", async () => {
    const { admin, site, connector, email } = await setup();
    const stranger = `never-seen-${n}@example.com`;
    expect((await call("PATCH", `/api/users/${stranger}`, { disabled: true }, admin)).status).toBe(200);
    expect((await call("GET", "/api/sites", undefined, await accessHeader(stranger))).status).toBe(401);

    const access = await accessHeader(email);
    const typing = await fullControl(access, site, connector);
    const link = (await (await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk", viewOnly: false }, access)).json()) as { url: string };
    expect((await call("PATCH", `/api/users/${email.toUpperCase()}`, { disabled: true }, admin)).status).toBe(200);
    expect(await typing.closedWith(2000)).toEqual({ code: CloseCode.gone, reason: "Your access was removed by admin." });
    const u = new URL(link.url);
    expect((await call("GET", `${u.pathname}/status`, undefined, { "X-Porthole-Link": decodeURIComponent(u.hash.slice(1)) })).status).toBe(410);
    expect((await call("GET", "/api/sites", undefined, access)).status).toBe(401);
  });

  it("lowering an Access identity to viewer ends its full control and is not undone by the default role", async () => {
    const { admin, site, connector, email } = await setup();
    const access = await accessHeader(email);
    const typing = await fullControl(access, site, connector);
    const res = await call("PATCH", `/api/users/${email}`, { role: "viewer" }, admin);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ username: email, role: "viewer", disabled: false });
    expect((await typing.closedWith(2000)).code).toBe(CloseCode.gone);
    expect((await call("POST", "/api/links", { site, hypervisor: "lab", vm: "desk" }, access)).status).toBe(403);
    const consoles = await call("POST", "/api/consoles", { site, hypervisor: "lab", vm: "desk" }, access);
    expect(((await consoles.json()) as { viewOnly: boolean }).viewOnly).toBe(true);
  });

  it("refuses hostile or meaningless changes to identities with a clear error and changes nothing", async () => {
    const admin = await signIn();
    const bad = await call("PATCH", "/api/users/not-an-email-nor-account", { disabled: true }, admin);
    expect(bad.status).toBe(404);
    const pw = await call("PATCH", "/api/users/someone@example.com", { password: "a long new password" }, admin);
    expect(pw.status).toBe(404);
    expect(((await pw.json()) as { error: { message: string } }).error.message).toMatch(/Access/);
    const listed = (await (await call("GET", "/api/users", undefined, admin)).json()) as { username: string }[];
    expect(listed.some((u) => u.username === "someone@example.com" || u.username === "not-an-email-nor-account")).toBe(false);
  });
});
