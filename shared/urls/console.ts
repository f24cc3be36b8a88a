/**
 * Where a console lives on the edge. The page URL keeps the ticket in the fragment, which browsers
 * never send to a server, so it stays out of access logs; the page turns it into the wsUrl.
 */

export function consoleSocketPath(site: string, ticket: string): string {
  return `/ws/console/${encodeURIComponent(site)}?ticket=${encodeURIComponent(ticket)}`;
}

/** ws:// for an http edge, wss:// for an https one. */
export function consoleSocketUrl(origin: string, site: string, ticket: string): string {
  return origin.replace(/^http/, "ws") + consoleSocketPath(site, ticket);
}

/**
 * `viewOnly` only tells the page to show a view-only console; the edge enforces it regardless.
 * `hypervisor` and `vm` let the page ask for a fresh ticket when it reconnects (tickets are single use).
 */
export function consolePageUrl(origin: string, site: string, ticket: string, viewOnly = false, target?: { hypervisor: string; vm: string }): string {
  const fragment = new URLSearchParams({ site, ticket, ...(target ?? {}), ...(viewOnly ? { view: "1" } : {}) }).toString();
  return `${origin}/console#${fragment}`;
}

/** A share link's socket: reusable until the link expires or is revoked. */
export function linkSocketPath(site: string, secret: string): string {
  return `/ws/link/${encodeURIComponent(site)}?link=${encodeURIComponent(secret)}`;
}

export function linkSocketUrl(origin: string, site: string, secret: string): string {
  return origin.replace(/^http/, "ws") + linkSocketPath(site, secret);
}

/**
 * A share link's page. The secret is in the fragment, like a console's ticket, so it stays out of
 * request logs; the page asks the edge whether the link is live and says so if not.
 */
export function linkPageUrl(origin: string, site: string, secret: string): string {
  return `${origin}/l/${encodeURIComponent(site)}#${encodeURIComponent(secret)}`;
}
