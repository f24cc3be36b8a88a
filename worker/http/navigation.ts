/**
 * How a person reached a console page. A page on any site can send the top window to
 * `/console#site=…&hypervisor=…&vm=…` or `/open?…`; the console page would then ask the person's
 * session for a ticket and show a live console of the VM the other site chose, in their name. The
 * page's own requests are same-origin whoever sent it there, so only the document request tells:
 * the Worker reads its `Sec-Fetch-Site` and writes the answer into the page, which then waits for
 * the person's click before it uses their session.
 */

/** The meta element the console page reads; console.html ships it as "cross-site" (ask). */
export const NAVIGATION_META = "porthole-navigation";

/**
 * Typed, bookmarked or opened from the edge's own pages ("none", "same-origin"). Anything else is
 * another site's doing: "cross-site", "same-site" (a sibling host is not this edge) and no header at
 * all (a browser too old to say), which errs towards asking.
 */
export function ownNavigation(req: Request): boolean {
  const site = req.headers.get("Sec-Fetch-Site");
  return site === "same-origin" || site === "none";
}

/** The console page's HTML with the navigation's verdict; only a person's own navigation says "same-origin". */
export function markNavigation(page: Response, own: boolean): Response {
  const res = new Response(page.body, page);
  if (!own || !(res.headers.get("Content-Type") ?? "").startsWith("text/html")) return res;
  return new HTMLRewriter()
    .on(`meta[name="${NAVIGATION_META}"]`, {
      element(el) {
        el.setAttribute("content", "same-origin");
      },
    })
    .transform(res);
}
