/**
 * requireUser and requireRole on a throwaway app (as hono tests its middleware), against the real
 * registry object: sign-ins and tokens are looked up on every request, so access taken back is gone
 * at the next one. Runs in the Workers pool (vitest.workers.config.ts): it needs the registry.
 */
import { env } from "cloudflare:test";
import { Hono } from "hono";
import { beforeAll, describe, expect, it } from "vitest";
import type { AppEnv } from "../env.ts";
import { ApiError, errorResponse } from "../http/errors.ts";
import { registryOf } from "../registry/registry-object.ts";
import { hashPassword } from "./passwords.ts";
import { API_TOKEN_PREFIX, requireRole, requireUser, SIGN_IN_COOKIE } from "./sign-in.ts";
import { sha256Hex } from "./secrets.ts";

const app = new Hono<AppEnv>();
app.onError((err, c) => (err instanceof ApiError ? errorResponse(c, err) : c.text(String(err), 500)));
app.use("*", requireUser);
app.get("/who", (c) => c.json(c.get("user")));
app.get("/admin-only", requireRole("admin"), (c) => c.text("ok"));
app.get("/operators", requireRole("admin", "operator"), (c) => c.text("ok"));

const get = (path: string, headers: Record<string, string> = {}) => app.request(`http://edge.test${path}`, { headers }, env);
const code = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;

/** A registry account with a live sign-in cookie and an API token, made directly in the registry. */
async function account(username: string, role: "admin" | "operator" | "viewer") {
  const registry = registryOf(env);
  const id = await registry.createUser(username, role, await hashPassword(`${username} password 1`));
  if (!id) throw new Error(`could not create ${username}`);
  const cookie = `${username}-session-secret`;
  await registry.createSignIn(await sha256Hex(cookie), { userId: id, user: username, expiresAt: Date.now() + 3600_000 });
  const token = `${API_TOKEN_PREFIX}${username}-token-secret`;
  await registry.createToken(`${username}-token`, await sha256Hex(token), "test", username, id);
  return { cookie: { Cookie: `${SIGN_IN_COOKIE}=${cookie}` }, bearer: { Authorization: `bearer ${token}` } };
}

let viewer: Awaited<ReturnType<typeof account>>;
let operator: Awaited<ReturnType<typeof account>>;
beforeAll(async () => {
  viewer = await account("mw-viewer", "viewer");
  operator = await account("mw-operator", "operator");
});

describe("requireUser", () => {
  it("refuses a request with no credential, or with credentials nobody issued, with 401 and what to do", async () => {
    const attempts: Record<string, string>[] = [{}, { Cookie: `${SIGN_IN_COOKIE}=forged` }, { Authorization: `Bearer ${API_TOKEN_PREFIX}forged` }, { Authorization: "Bearer not-a-porthole-token" }];
    for (const headers of attempts) {
      const res = await get("/who", headers);
      expect(res.status).toBe(401);
      expect(await code(res)).toEqual({ code: "not_signed_in", message: expect.stringMatching(/Sign in first/) });
    }
  });

  it("names the caller from a sign-in cookie or an API token (Bearer in any case)", async () => {
    expect(await (await get("/who", viewer.cookie)).json()).toMatchObject({ name: "mw-viewer", role: "viewer", via: "session" });
    expect(await (await get("/who", operator.bearer)).json()).toMatchObject({ name: "mw-operator", role: "operator", via: "token" });
  });

  it("uses the account as it is now: a changed role applies, a disabled or deleted account is refused at once", async () => {
    const temp = await account("mw-temp", "viewer");
    await registryOf(env).updateUser("mw-temp", { role: "operator" }, "test");
    expect(await (await get("/who", temp.cookie)).json()).toMatchObject({ role: "operator" });
    await registryOf(env).updateUser("mw-temp", { disabled: true }, "test");
    expect((await get("/who", temp.cookie)).status).toBe(401);
    expect((await get("/who", temp.bearer)).status).toBe(401);
    await registryOf(env).deleteUser("mw-temp", "test");
    expect((await get("/who", temp.bearer)).status).toBe(401);
  });
});

describe("requireRole", () => {
  it("lets the named roles through and refuses the others with 403 naming the role needed", async () => {
    expect((await get("/operators", operator.cookie)).status).toBe(200);
    const refused = await get("/operators", viewer.cookie);
    expect(refused.status).toBe(403);
    expect(await code(refused)).toEqual({ code: "forbidden", message: "This needs the admin or operator role." });
    expect((await get("/admin-only", operator.bearer)).status).toBe(403);
  });
});
