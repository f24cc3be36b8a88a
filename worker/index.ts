/**
 * The edge: sign-in, the API, the connector and console socket upgrades. Console bytes never pass
 * through this Worker's code: upgrades are handed to the site's Durable Object.
 */
import { type Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { consoles } from "./api/consoles.ts";
import { accessRequests, grants, groups } from "./api/access.ts";
import { auditApi } from "./api/audit.ts";
import { signInBlocks } from "./api/signin-blocks.ts";
import { links } from "./api/links.ts";
import { recordings } from "./api/recordings.ts";
import { sessions } from "./api/sessions.ts";
import { tokens } from "./api/tokens.ts";
import { users } from "./api/users.ts";
import { openConsolePage, vncUrls } from "./api/vnc-urls.ts";
import { legacyLinkPage, legacyLinkStatus, linkJoin, linkJoinBody, linkJoinLook, linkPin, linkPinBody, linkPage, linkStatus } from "./http/link-page.ts";
import { parseConnectorToken, requireSite, sites } from "./api/sites.ts";
import { builtInAdminCheck } from "./auth/builtin-admin.ts";
import { currentUser, requireUser, signIn, signOut } from "./auth/sign-in.ts";
import { bearerToken } from "./auth/secrets.ts";
import type { AppEnv } from "./env.ts";
import { ApiError, errorResponse } from "./http/errors.ts";
import { ConsoleTarget } from "./http/validate.ts";
import type { Me, Reply } from "../shared/api/types.ts";
import { VERSION } from "./version.ts";
import { browserChecks, limitBody, securityHeaders } from "./http/security.ts";
import { markNavigation, ownNavigation } from "./http/navigation.ts";

export { Registry } from "./registry/registry-object.ts";
export { SiteObject } from "./site/site-object.ts";

const app = new Hono<AppEnv>();

app.onError((err, c) => {
  if (err instanceof ApiError) return errorResponse(c, err);
  // hono's own 4xx (a body that is not JSON, from the validator): our error shape, in words.
  if (err instanceof HTTPException && err.status < 500) {
    const code = err.status === 400 ? "invalid_json" : "invalid_request";
    const message = err.status === 400 ? "The request body must be JSON." : err.message;
    return errorResponse(c, new ApiError(err.status as 400, code, message));
  }
  console.error("unhandled", err);
  return errorResponse(c, new ApiError(500, "internal", "Something went wrong on the edge."));
});
app.notFound((c) => errorResponse(c, new ApiError(404, "not_found", `No route for ${c.req.method} ${c.req.path}.`)));

app.use("*", securityHeaders, limitBody, browserChecks);

app.get("/healthz", (c) => c.json({ ok: true, version: VERSION } satisfies Reply<"GET /healthz">));
// Before any credential is looked at: changed secrets of the built-in admin end the old ones' access.
app.use("*", builtInAdminCheck);

app.route("/api/session", signIn);
app.use("/api/*", requireUser);
app.delete("/api/session", signOut);
app.get("/api/session", (c) => {
  const { name, role, via } = c.get("user");
  return c.json({ user: name, role, via } satisfies Me);
});
app.route("/api/sites", sites);
app.route("/api/consoles", consoles);
app.route("/api/vnc-urls", vncUrls);
app.route("/api/users", users);
app.route("/api/tokens", tokens);
app.route("/api/links", links);
app.route("/api/sessions", sessions);
app.route("/api/audit", auditApi);
app.route("/api/recordings", recordings);
app.route("/api/signin-blocks", signInBlocks);
app.route("/api/groups", groups);
app.route("/api/grants", grants);
app.route("/api/access-requests", accessRequests);
/**
 * /open: a fresh console for the person, unless another site sent them here (or the app passes on
 * an address it was given: `ask=1`). Then no ticket: the console page asks the person first. Signed
 * out, sign-in comes first either way; the app then passes the address on with `ask=1`.
 */
app.get("/open", async (c): Promise<Response> => {
  const ask = !ownNavigation(c.req.raw) || c.req.query("ask") === "1";
  if (!ask || !(await currentUser(c))) return openConsolePage(c);
  const parsed = ConsoleTarget.safeParse({ site: c.req.query("site"), hypervisor: c.req.query("hypervisor"), vm: c.req.query("vm") });
  if (!parsed.success) throw new ApiError(400, "invalid_request", "This console link is incomplete.");
  return c.redirect(`/console#${new URLSearchParams({ ...parsed.data, ask: "1" })}`, 302);
});
app.get("/l/:site", linkPage);
app.get("/l/:site/status", linkStatus);
app.post("/l/:site/pin", linkPinBody, linkPin);
app.post("/l/:site/join", linkJoinBody, linkJoin);
app.get("/l/:site/join/:id", linkJoinLook);
app.get("/l/:site/:secret", legacyLinkPage);
app.get("/l/:site/:secret/status", legacyLinkStatus);

function requireUpgrade(req: Request): void {
  if (req.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "websocket_required", "This endpoint only accepts WebSocket upgrades.");
  }
}

app.get("/connect", async (c) => {
  requireUpgrade(c.req.raw);
  const token = bearerToken(c.req.header("Authorization"));
  const site = token ? parseConnectorToken(token) : null;
  if (!site) throw new ApiError(401, "invalid_connector_token", "Present the site's connector token as a Bearer token.");
  return (await requireSite(c.env, site)).fetch(c.req.raw);
});

/** Console sockets (single-use tickets and share links): the credential is in the URL. */
async function browserSocket(c: Context<AppEnv>): Promise<Response> {
  requireUpgrade(c.req.raw);
  // Cross-site WebSocket hijacking: a page on another origin must not ride a user's links.
  const origin = c.req.header("Origin");
  if (origin !== undefined && origin !== new URL(c.req.url).origin) {
    throw new ApiError(403, "foreign_origin", "Console sockets only accept pages served by this edge.");
  }
  return (await requireSite(c.env, c.req.param("site") ?? "")).fetch(c.req.raw);
}

app.get("/ws/console/:site", browserSocket);
app.get("/ws/link/:site", browserSocket);

/** The app's static files, through the Worker so they carry the security headers. */
app.on(["GET", "HEAD"], "*", async (c) => {
  if (c.req.path.startsWith("/api/")) throw new ApiError(404, "not_found", `No route for ${c.req.method} ${c.req.path}.`);
  if (c.req.path === "/console" || c.req.path === "/console.html") {
    // Never a 304 for a cached copy: the page carries this navigation's verdict (it is no-store anyway).
    const page = await c.env.ASSETS.fetch(new Request(c.req.url, { method: c.req.method }));
    return markNavigation(page, ownNavigation(c.req.raw));
  }
  const res = await c.env.ASSETS.fetch(c.req.raw);
  return new Response(res.body, res);
});

export default app;
