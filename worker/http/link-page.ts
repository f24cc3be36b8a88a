/**
 * Share link pages: a live link shows the console page; an expired, revoked or unknown one
 * answers 410 / 404 with a page that says so.
 */
import type { Context } from "hono";
import { NAME_PATTERN } from "../../shared/protocol/messages.ts";
import { siteOf } from "../api/sites.ts";
import type { AppEnv } from "../env.ts";
import { registryOf } from "../registry/registry-object.ts";

function gonePage(status: 404 | 410, title: string, text: string): Response {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title} — Porthole</title>
<link rel="stylesheet" href="/porthole.css"><link rel="icon" href="data:,"></head>
<body><main class="panel"><h1>${title}</h1><p>${text}</p></main></body></html>`;
  return new Response(html, { status, headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" } });
}

async function status(c: Context<AppEnv>) {
  const site = c.req.param("site") ?? "";
  if (!NAME_PATTERN.test(site) || !(await registryOf(c.env).hasSite(site))) return null;
  return siteOf(c.env, site).linkStatus(c.req.param("secret") ?? "");
}

export async function linkPage(c: Context<AppEnv>): Promise<Response> {
  const s = await status(c);
  if (!s || (!s.ok && s.why === "unknown")) return gonePage(404, "Unknown link", "This console link does not exist. Check that you copied all of it.");
  if (!s.ok) {
    return s.why === "revoked"
      ? gonePage(410, "Link revoked", "Whoever shared this console has revoked the link. Ask them for a new one.")
      : gonePage(410, "Link expired", "This console link has expired. Ask whoever shared it for a new one.");
  }
  const page = await c.env.ASSETS.fetch(new URL("/console.html", c.req.url));
  return new Response(page.body, { status: 200, headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" } });
}

/** What the link page shows: time left, view-only, the VM's name. */
export async function linkStatus(c: Context<AppEnv>): Promise<Response> {
  const s = await status(c);
  if (!s || !s.ok) {
    const why = s && !s.ok ? s.why : "unknown";
    return c.json({ error: { code: why === "unknown" ? "unknown_link" : `link_${why}`, message: `This link is ${why}.` } }, why === "unknown" ? 404 : 410);
  }
  return c.json({ expiresAt: new Date(s.expiresAt).toISOString(), viewOnly: s.viewOnly, vm: s.vmName });
}
