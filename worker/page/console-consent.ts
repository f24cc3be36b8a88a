/**
 * A console page another site sent the person to waits for their click before it uses their
 * session (worker/http/navigation.ts): otherwise any page could open a full-control console of a VM
 * it chose, in their name, and show them a screen of its own making. The edge writes its verdict on
 * the navigation into the page's meta element; a page without the verdict (an old or cached copy)
 * asks too. Share links and ticket URLs carry their own credential, not the person's session: they
 * open at once, but a reconnect through the session asks like any other. The prompt itself is the
 * page's (ConsoleSession.askConsent, shown by console-ui.tsx); this module only decides.
 */

/** The meta element the edge fills in (NAVIGATION_META in worker/http/navigation.ts). */
export const NAVIGATION_META = "porthole-navigation";

/** The session may be used at once only after the person's own navigation, and when nothing asked to ask. */
export function sessionTrusted(navigation: string | null | undefined, askParam: string | null): boolean {
  return navigation === "same-origin" && askParam !== "1";
}

/** Asks once: after the person's Open console, the page's later reconnects go ahead. */
export class ConsentGate {
  #trusted: boolean;
  #ask: (site: string, vm: string) => Promise<void>;

  constructor(trusted: boolean, ask: (site: string, vm: string) => Promise<void>) {
    this.#trusted = trusted;
    this.#ask = ask;
  }

  /** Resolves when the page may ask the person's session for a console of `vm` on `site`. */
  async confirm(site: string, vm: string): Promise<void> {
    if (this.#trusted) return;
    await this.#ask(site, vm);
    this.#trusted = true;
  }
}
