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

export function consolePageUrl(origin: string, site: string, ticket: string): string {
  const fragment = new URLSearchParams({ site, ticket }).toString();
  return `${origin}/console#${fragment}`;
}
