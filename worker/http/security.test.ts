/** The browser checks and the body cap, on a throwaway app (as hono tests its own middleware). */
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../env.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { browserChecks, limitBody, MAX_BODY_BYTES } from "./security.ts";

const app = new Hono<AppEnv>();
app.onError((err, c) => (err instanceof ApiError ? errorResponse(c, err) : c.text("unexpected", 500)));
app.use("*", limitBody, browserChecks);
app.post("/change", (c) => c.text("changed"));
app.get("/read", (c) => c.text("read"));

const post = (headers: Record<string, string>, body = "{}") => app.request("http://edge.test/change", { method: "POST", headers, body });
const json = { "Content-Type": "application/json" };

describe("browserChecks", () => {
  it("lets the edge's own pages change things with JSON", async () => {
    expect((await post({ ...json, "Sec-Fetch-Site": "same-origin", Cookie: "s=1" })).status).toBe(200);
    expect((await post({ ...json, Origin: "http://edge.test", Cookie: "s=1" })).status).toBe(200);
  });

  it("refuses bodies a cross-site page could send without a preflight (form, text/plain, multipart)", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await post({ "Content-Type": type, Cookie: "s=1" }, "a=1");
      expect(res.status).toBe(415);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unsupported_media_type");
    }
  });

  it("refuses requests from another site, by Sec-Fetch-Site or by Origin", async () => {
    expect((await post({ ...json, "Sec-Fetch-Site": "cross-site", Cookie: "s=1" })).status).toBe(403);
    expect((await post({ ...json, "Sec-Fetch-Site": "same-site", Cookie: "s=1" })).status).toBe(403);
    expect((await post({ ...json, Origin: "http://evil.test", Cookie: "s=1" })).status).toBe(403);
  });

  it("judges a program with an API token and no cookie by its token alone (any case of Bearer)", async () => {
    expect((await post({ ...json, Origin: "http://evil.test", Authorization: "bearer pha_x" })).status).toBe(200);
    // With a cookie it may be a browser riding a session: checked.
    expect((await post({ ...json, Origin: "http://evil.test", Authorization: "Bearer pha_x", Cookie: "s=1" })).status).toBe(403);
  });

  it("leaves reads alone", async () => {
    expect((await app.request("http://edge.test/read", { headers: { "Sec-Fetch-Site": "cross-site" } })).status).toBe(200);
  });
});

describe("limitBody", () => {
  it("refuses a body over the cap before anything reads it", async () => {
    const res = await post({ ...json, "Sec-Fetch-Site": "same-origin" }, `"${"x".repeat(MAX_BODY_BYTES)}"`);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("body_too_large");
  });
});
