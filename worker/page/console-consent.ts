/**
 * A console page another site sent the person to waits for their click before it uses their
 * session (worker/http/navigation.ts): otherwise any page could open a full-control console of a VM
 * it chose, in their name, and show them a screen of its own making. The edge writes its verdict on
 * the navigation into the page's meta element; a page without the verdict (an old or cached copy)
 * asks too. Share links and ticket URLs carry their own credential, not the person's session: they
 * open at once, but a reconnect through the session asks like any other.
 */

/** The meta element the edge fills in (NAVIGATION_META in worker/http/navigation.ts). */
const NAVIGATION_META = "porthole-navigation";

/** The session may be used at once only after the person's own navigation, and when nothing asked to ask. */
export function sessionTrusted(navigation: string | null | undefined, askParam: string | null): boolean {
  return navigation === "same-origin" && askParam !== "1";
}

export class Consent {
  #trusted: boolean;

  constructor(askParam: string | null) {
    const meta = document.querySelector(`meta[name="${NAVIGATION_META}"]`)?.getAttribute("content");
    this.#trusted = sessionTrusted(meta, askParam);
  }

  /** Resolves when the page may ask the person's session for a console of `vm` on `site`. */
  async confirm(site: string, vm: string): Promise<void> {
    if (this.#trusted) return;
    const box = document.getElementById("confirm")!;
    const button = document.getElementById("confirm-open") as HTMLButtonElement;
    document.getElementById("confirm-title")!.textContent = `Open the console of ${vm} on ${site}?`;
    document.body.dataset.state = "confirm";
    document.getElementById("status")!.textContent = "Waiting for you";
    for (const id of ["notice", "reconnect"]) document.getElementById(id)!.hidden = true;
    box.hidden = false;
    button.focus();
    await new Promise<void>((resolve) => button.addEventListener("click", () => resolve(), { once: true }));
    box.hidden = true;
    this.#trusted = true;
  }
}
