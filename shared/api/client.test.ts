import { describe, expect, it } from "vitest";
import { ApiFailure, apiClient, routePath } from "./client.ts";

/** A client whose fetch answers `reply` and remembers what it was asked. */
function clientAnswering(reply: () => Response | Promise<Response>) {
  const asked: { url: string; init: RequestInit }[] = [];
  const client = apiClient({
    base: "https://edge.test",
    headers: () => ({ Authorization: "Bearer pha_x" }),
    fetch: async (url, init) => {
      asked.push({ url, init });
      return reply();
    },
  });
  return { client, asked };
}

describe("the shared API client", () => {
  it("encodes path parameters and leaves out empty query values", () => {
    expect(routePath("GET /api/sites/:site/vms", { params: { site: "a b/c" } })).toBe("/api/sites/a%20b%2Fc/vms");
    expect(routePath("GET /api/audit", { query: { type: "console", actor: "", limit: 50 } })).toBe("/api/audit?type=console&limit=50");
  });

  it("sends JSON with the client's headers and returns the reply", async () => {
    const { client, asked } = clientAnswering(() => Response.json({ pageUrl: "p", wsUrl: "w", expiresAt: "e", viewOnly: false }, { status: 201 }));
    const opened = await client.call("POST /api/consoles", { body: { site: "s", hypervisor: "h", vm: "v" } });
    expect(opened.wsUrl).toBe("w");
    expect(asked[0]!.url).toBe("https://edge.test/api/consoles");
    expect(asked[0]!.init.method).toBe("POST");
    expect(asked[0]!.init.headers).toEqual({ "Content-Type": "application/json", Authorization: "Bearer pha_x" });
    expect(JSON.parse(asked[0]!.init.body as string)).toEqual({ site: "s", hypervisor: "h", vm: "v" });
  });

  it("turns the edge's error into an ApiFailure with its own sentence", async () => {
    const { client } = clientAnswering(() => Response.json({ error: { code: "unknown_site", message: "There is no site named \"x\"." } }, { status: 404 }));
    const err = await client.call("GET /api/sites/:site/vms", { params: { site: "x" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiFailure);
    expect(err).toMatchObject({ status: 404, code: "unknown_site", message: "There is no site named \"x\".", fromEdge: true });
  });

  it("says the status when the answer is not the edge's error shape", async () => {
    const { client } = clientAnswering(() => new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" }));
    await expect(client.call("GET /api/links")).rejects.toMatchObject({ status: 502, code: "http_502", message: "The edge answered 502 Bad Gateway.", fromEdge: false });
  });

  it("reports an edge it cannot reach as status 0, with the cause, and tells onFailure", async () => {
    const heard: string[] = [];
    const client = apiClient({
      fetch: () => Promise.reject(new TypeError("Failed to fetch")),
      onFailure: (f, route) => heard.push(`${f.status} ${route}`),
    });
    const err = (await client.call("GET /api/session").catch((e: unknown) => e)) as ApiFailure;
    expect(err.status).toBe(0);
    expect(err.cause).toBeInstanceOf(TypeError);
    expect(heard).toEqual(["0 GET /api/session"]);
  });

  it("answers any request whatever its status through send", async () => {
    const { client } = clientAnswering(() => new Response(null, { status: 204 }));
    expect(await client.send("DELETE", "/api/links/x")).toMatchObject({ status: 204, body: undefined });
  });

  it("does not compile a call that does not fit its route", () => {
    // Checked by the type checker (npm run typecheck), never run.
    const typeOnly = async (client: ReturnType<typeof apiClient>) => {
      // @ts-expect-error the route's :site is missing
      await client.call("GET /api/sites/:site/vms");
      // @ts-expect-error a body the route does not take
      await client.call("POST /api/sites", { body: { title: "x" } });
      // @ts-expect-error no such route
      await client.call("GET /api/nothing");
      const vms = await client.call("GET /api/sites/:site/vms", { params: { site: "s" } });
      // @ts-expect-error the reply is typed: a VM has no `address`
      void vms[0]?.address;
    };
    expect(typeof typeOnly).toBe("function");
  });
});
