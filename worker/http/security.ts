/**
 * What every response and every state-changing request goes through: a body cap, the browser
 * checks against cross-site requests (CSRF, login CSRF included), and the security headers.
 */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { secureHeaders } from "hono/secure-headers";
import { bearerToken } from "../auth/secrets.ts";
import type { AppEnv, Env } from "../env.ts";
import { ApiError } from "./errors.ts";

/** No API body comes near this; a larger one is refused before it is buffered or parsed. */
export const MAX_BODY_BYTES = 64 * 1024;

export const limitBody: MiddlewareHandler<AppEnv> = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new ApiError(413, "body_too_large", `Request bodies are limited to ${MAX_BODY_BYTES / 1024} KiB.`);
  },
});

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * State-changing requests from browsers: a JSON body only (a form or `text/plain` body is what a
 * cross-site page can send without a CORS preflight) and never from another site. A request with an
 * API token and no cookies is from a program, not a browser riding someone's session: it is judged by
 * its token alone.
 */
export const browserChecks: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (SAFE_METHODS.has(c.req.method)) return next();
  const hasBody = c.req.raw.body !== null && c.req.header("Content-Length") !== "0";
  if (hasBody) {
    const type = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/json") {
      throw new ApiError(415, "unsupported_media_type", "Send the request body as application/json.");
    }
  }
  const programmatic = bearerToken(c.req.header("Authorization")) !== null && !c.req.header("Cookie");
  if (!programmatic) refuseCrossSite(c);
  return next();
};

/** Sec-Fetch-Site when the browser sends it; otherwise Origin must be this edge's own. */
function refuseCrossSite(c: Context<AppEnv>): void {
  const site = c.req.header("Sec-Fetch-Site");
  if (site !== undefined) {
    if (site === "same-origin" || site === "none") return;
    throw new ApiError(403, "cross_site_request", "Requests from other sites are refused.");
  }
  const origin = c.req.header("Origin");
  if (origin !== undefined && origin !== new URL(c.req.url).origin) {
    throw new ApiError(403, "cross_site_request", "Requests from other sites are refused.");
  }
}

/**
 * FRAME_ANCESTORS: origins (space- or comma-separated, e.g. `https://portal.example.com`) that may
 * embed console and share-link pages. Anything that is not a plain http(s) origin is ignored, so a
 * typo cannot open framing to everyone.
 */
export function frameAncestors(env: Env): string[] {
  const out: string[] = [];
  for (const item of (env.FRAME_ANCESTORS ?? "").split(/[\s,]+/)) {
    if (!item) continue;
    try {
      const url = new URL(item);
      if ((url.protocol === "https:" || url.protocol === "http:") && url.origin === item.replace(/\/$/, "")) out.push(url.origin);
      else console.warn("FRAME_ANCESTORS: ignoring", item);
    } catch {
      console.warn("FRAME_ANCESTORS: ignoring", item);
    }
  }
  return out;
}

/** Pages that show a console: the one-off console page and share-link pages (410 pages included). */
function isConsolePage(path: string): boolean {
  return path === "/console" || path === "/console.html" || path === "/l" || path.startsWith("/l/");
}

/** Responses that may carry a secret or a person's data: never kept by a browser or proxy cache. */
function isPrivate(path: string): boolean {
  return path.startsWith("/api/") || path === "/open" || isConsolePage(path);
}

export const securityHeaders: MiddlewareHandler<AppEnv> = async (c, next) => {
  // A WebSocket upgrade's answer comes from the site object as is (its headers are immutable).
  if (c.req.header("Upgrade")) return next();
  const embedders = isConsolePage(c.req.path) ? frameAncestors(c.env) : [];
  const headers = secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", "data:", "blob:"],
      // 'self' covers ws:/wss: to this host in CSP level 3 browsers.
      connectSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: embedders.length ? embedders : ["'none'"],
    },
    // CSP frame-ancestors decides; X-Frame-Options cannot name origins, so it is only sent when no one may frame.
    xFrameOptions: embedders.length ? false : "DENY",
    referrerPolicy: "no-referrer",
    xContentTypeOptions: true,
    // Named embedders load the page cross-origin.
    crossOriginResourcePolicy: embedders.length ? "cross-origin" : "same-origin",
  });
  await headers(c, async () => {
    await next();
  });
  if (isPrivate(c.req.path)) c.res.headers.set("Cache-Control", "no-store");
};
