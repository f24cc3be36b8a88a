/**
 * Issue 23 item 2: another site must not open a console in a signed-in person's name. The edge
 * tells the console page how the person got there (Sec-Fetch-Site of the document request), and
 * /open gives no ticket to another site's navigation.
 */
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createSite, ORIGIN, signIn, welcomedConnector } from "./helpers.ts";

let admin = "";

beforeAll(async () => {
  admin = await signIn();
  await welcomedConnector(await createSite(admin, "navsite"));
});

function get(path: string, headers: Record<string, string>): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}${path}`, { headers: { Cookie: admin, ...headers }, redirect: "manual" });
}

/** What the page reads: the navigation meta element's content. */
async function navigation(res: Response): Promise<string | undefined> {
  return /<meta name="porthole-navigation" content="([^"]*)"/.exec(await res.text())?.[1];
}

describe("how a person reached the console page", () => {
  it("marks only their own navigations (typed, bookmarked, from the edge's pages) as such", async () => {
    for (const site of ["none", "same-origin"]) {
      const res = await get("/console", { "Sec-Fetch-Site": site });
      expect(res.status).toBe(200);
      expect(res.headers.get("Cache-Control")).toBe("no-store");
      expect(await navigation(res), site).toBe("same-origin");
    }
  });

  it("leaves another site's navigation, a sibling host's and one without the header marked to ask", async () => {
    for (const headers of [{ "Sec-Fetch-Site": "cross-site" }, { "Sec-Fetch-Site": "same-site" }, {}] as Record<string, string>[]) {
      const res = await get("/console", headers);
      expect(res.status).toBe(200);
      expect(await navigation(res), JSON.stringify(headers)).toBe("cross-site");
    }
  });
});

describe("/open", () => {
  const open = "/open?site=navsite&hypervisor=lab&vm=desk";

  it("gives the person's own navigation a ticket at once", async () => {
    const res = await get(open, { "Sec-Fetch-Site": "none" });
    expect(res.status).toBe(302);
    expect(res.headers.get("Location")).toMatch(/\/console#site=navsite&ticket=[^&]+&hypervisor=lab&vm=desk$/);
  });

  it("gives another site's navigation, or an address the app passes on (ask=1), no ticket: the page asks", async () => {
    for (const [path, headers] of [
      [open, { "Sec-Fetch-Site": "cross-site" }],
      [open, {}],
      [`${open}&ask=1`, { "Sec-Fetch-Site": "same-origin" }],
    ] as const) {
      const res = await get(path, headers);
      expect(res.status).toBe(302);
      expect(res.headers.get("Location"), path).toBe("/console#site=navsite&hypervisor=lab&vm=desk&ask=1");
    }
  });

  it("sends a signed-out person to sign in first, wherever they came from", async () => {
    const res = await exports.default.fetch(`${ORIGIN}${open}`, { headers: { "Sec-Fetch-Site": "cross-site" }, redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("Location")).toMatch(/^\/\?next=%2Fopen%3F/);
  });
});
