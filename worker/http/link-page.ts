/**
 * Share link pages. A link's URL is `/l/<site>#<secret>`: the secret is in the fragment, which
 * browsers never send, so it stays out of every request log. The page reads it and asks
 * `/l/<site>/status` with the secret in a header; an expired, revoked or unknown link is shown as
 * such by the page. Old-style URLs (`/l/<site>/<secret>`) still work: a live one is redirected to
 * the fragment form, an ended one answers 410 / 404 with a page that says so.
 */
import type { Context } from "hono";
import { NAME_PATTERN } from "../../shared/protocol/messages.ts";
import { siteOf } from "../api/sites.ts";
import type { AppEnv } from "../env.ts";
import { registryOf } from "../registry/registry-object.ts";
import type { LinkJoinAsked, LinkJoinBody, LinkJoinState, LinkPass, LinkPinBody, LinkStatus } from "../../shared/api/types.ts";
import { JOIN_NAME_MAX } from "../../shared/protocol/limits.ts";
import { z } from "zod";
import { PIN_PATTERN } from "../site/share-links.ts";
import { validBody } from "./validate.ts";

/** The header the link page sends the secret in (headers are not logged; URLs are). */
export const LINK_SECRET_HEADER = "X-Porthole-Link";
/** The header a waiting viewer shows its request's token in. */
export const JOIN_TOKEN_HEADER = "X-Porthole-Join";

/** By the site object's refusal code (LinkStatus). */
const ENDED = {
  unknown_link: { status: 404, title: "Unknown link", text: "This console link does not exist. Check that you copied all of it." },
  link_revoked: { status: 410, title: "Link revoked", text: "Whoever shared this console has revoked the link. Ask them for a new one." },
  link_expired: { status: 410, title: "Link expired", text: "This console link has expired. Ask whoever shared it for a new one." },
  link_locked: { status: 410, title: "Link locked", text: "This console link is locked: too many wrong PINs were tried. Ask whoever shared it for a new one." },
  link_used_up: { status: 410, title: "Link used", text: "This console link was already used as many times as it may be. Ask whoever shared it for a new one." },
} as const;

function gonePage(why: keyof typeof ENDED): Response {
  const { status, title, text } = ENDED[why];
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title} — Porthole</title>
<link rel="stylesheet" href="/porthole.css"><link rel="icon" href="data:,"></head>
<body><main class="panel"><h1>${title}</h1><p>${text}</p></main></body></html>`;
  return new Response(html, { status, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

async function siteExists(c: Context<AppEnv>): Promise<string | null> {
  const site = c.req.param("site") ?? "";
  return NAME_PATTERN.test(site) && (await registryOf(c.env).hasSite(site)) ? site : null;
}

async function status(c: Context<AppEnv>, secret: string) {
  const site = await siteExists(c);
  if (!site || !secret) return null;
  return siteOf(c.env, site).linkStatus(secret);
}

async function consolePage(c: Context<AppEnv>): Promise<Response> {
  const page = await c.env.ASSETS.fetch(new URL("/console.html", c.req.url));
  return new Response(page.body, { status: 200, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

/** GET /l/:site — the page; the secret is in the fragment, so the server cannot tell a dead link yet. */
export async function linkPage(c: Context<AppEnv>): Promise<Response> {
  if (!(await siteExists(c))) return gonePage("unknown_link");
  return consolePage(c);
}

/** GET /l/:site/:secret — an old-style URL: moves the secret into the fragment, or says why not. */
export async function legacyLinkPage(c: Context<AppEnv>): Promise<Response> {
  const secret = c.req.param("secret") ?? "";
  const s = await status(c, secret);
  if (!s) return gonePage("unknown_link");
  // A link that has not started yet is live: its page says when.
  if (!s.ok && s.code !== "link_not_started") return gonePage(s.code);
  return c.redirect(`/l/${encodeURIComponent(c.req.param("site")!)}#${encodeURIComponent(secret)}`, 302);
}

async function statusResponse(c: Context<AppEnv>, secret: string): Promise<Response> {
  const s = await status(c, secret);
  // Not started yet: the site's words carry the time it opens.
  if (s && !s.ok && s.code === "link_not_started") return c.json({ error: { code: s.code, message: s.message } }, 403);
  if (!s || !s.ok) {
    const code = s && !s.ok && s.code !== "link_not_started" ? s.code : "unknown_link";
    return c.json({ error: { code, message: ENDED[code].text } }, ENDED[code].status);
  }
  return c.json({ expiresAt: new Date(s.expiresAt).toISOString(), viewOnly: s.viewOnly, vm: s.vmName, pin: s.pin, approval: s.approval } satisfies LinkStatus);
}

const PinBody = z.object({ pin: z.string().regex(PIN_PATTERN, "pin: six digits") });

/**
 * POST /l/:site/pin with the secret in X-Porthole-Link and `{pin}` in the body: the right PIN gives
 * a pass for the link's socket; a wrong one is counted against the link (site-rpc.ts linkPass).
 * A malformed PIN is a 400 and is not counted (it is not a guess).
 */
export const linkPinBody = validBody<LinkPinBody>()(PinBody);
export async function linkPin(c: Context<AppEnv>): Promise<Response> {
  const site = await siteExists(c);
  const secret = c.req.header(LINK_SECRET_HEADER) ?? "";
  if (!site || !secret) return c.json({ error: { code: "unknown_link", message: ENDED.unknown_link.text } }, 404);
  const { pin } = (await c.req.json()) as LinkPinBody;
  const r = await siteOf(c.env, site).linkPass(secret, pin);
  if (!r.ok) return c.json({ error: { code: r.code, message: r.message } }, r.status);
  return c.json({ pass: r.pass, expiresAt: new Date(r.expiresAt).toISOString() } satisfies LinkPass);
}

/** GET /l/:site/status with the secret in X-Porthole-Link: time left, view-only, the VM's name. */
export function linkStatus(c: Context<AppEnv>): Promise<Response> {
  return statusResponse(c, c.req.header(LINK_SECRET_HEADER) ?? "");
}

/** GET /l/:site/:secret/status — the same for old-style URLs. */
export function legacyLinkStatus(c: Context<AppEnv>): Promise<Response> {
  return statusResponse(c, c.req.param("secret") ?? "");
}

const JoinBody = z.object({
  name: z
    .string()
    .trim()
    .min(1, "name: say who you are")
    .max(JOIN_NAME_MAX, `name: at most ${JOIN_NAME_MAX} characters`)
    // Shown to the people asked, in the audit and in Watching now: one line, no control characters.
    .regex(/^[^\u0000-\u001f\u007f]*$/, "name: no control characters or line breaks"),
  pass: z.string().max(200).optional(),
});

/**
 * POST /l/:site/join with the secret in X-Porthole-Link and `{name, pass?}`: a link that asks before
 * each viewer joins puts the viewer on the waiting list (worker/site/link-joins.ts); 201 with the
 * request's id and token, which only the asker holds.
 */
export const linkJoinBody = validBody<LinkJoinBody>()(JoinBody);
export async function linkJoin(c: Context<AppEnv>): Promise<Response> {
  const site = await siteExists(c);
  const secret = c.req.header(LINK_SECRET_HEADER) ?? "";
  if (!site || !secret) return c.json({ error: { code: "unknown_link", message: ENDED.unknown_link.text } }, 404);
  const { name, pass } = JoinBody.parse(await c.req.json());
  const r = await siteOf(c.env, site).linkJoin(secret, name, pass);
  if (!r.ok) return c.json({ error: { code: r.code, message: r.message } }, r.status);
  return c.json({ id: r.id, token: r.token, expiresAt: new Date(r.expiresAt).toISOString(), vm: r.vm } satisfies LinkJoinAsked, 201);
}

/** GET /l/:site/join/:id with the secret and the request's token in headers: where it stands. */
export async function linkJoinLook(c: Context<AppEnv>): Promise<Response> {
  const site = await siteExists(c);
  const secret = c.req.header(LINK_SECRET_HEADER) ?? "";
  const token = c.req.header(JOIN_TOKEN_HEADER) ?? "";
  if (!site || !secret) return c.json({ error: { code: "unknown_link", message: ENDED.unknown_link.text } }, 404);
  const r = await siteOf(c.env, site).linkJoinLook(secret, c.req.param("id") ?? "", token);
  if (!r.ok) return c.json({ error: { code: r.code, message: r.message } }, r.status);
  // Never cached: it may carry the socket's pass.
  c.header("Cache-Control", "no-store");
  return c.json({ state: r.state, expiresAt: new Date(r.expiresAt).toISOString(), message: r.message, ...(r.pass ? { pass: r.pass } : {}) } satisfies LinkJoinState);
}
