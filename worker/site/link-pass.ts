/**
 * A share link's PIN traded for a pass: a wrong PIN is counted against the link (the tenth locks
 * it) and audited; the right one gives a single-use 60-s console ticket bound to the link's user
 * (`link:<id>`) and VM, which the link's socket takes as `&pass=` (upgrades.ts). The PIN itself
 * goes nowhere but the hash comparison: not to the audit, not to a log.
 */
import type { LinkPass } from "./site-api.ts";
import type { SiteAudit } from "./site-audit.ts";
import { LINK_ENDED, MAX_PIN_FAILURES, type ShareLinkBook, usableLink } from "./share-links.ts";
import type { TicketBook } from "./tickets.ts";

export async function linkPass(to: { links: ShareLinkBook; tickets: TicketBook; audit: SiteAudit }, secret: string, pin: string): Promise<LinkPass> {
  // Before its start (or once used up) a PIN is not even checked: nothing to guess for.
  const usable = await usableLink(to.links, secret);
  if (!usable.ok) return usable;
  const { link } = usable;
  if (!link.pin) return { ok: false, status: 400, code: "no_pin", message: "This share link has no PIN: open it as it is." };
  const check = await to.links.checkPin(link.id, pin);
  if (!check.ok) {
    const detail = { id: link.id, hypervisor: link.hypervisor, vm: link.vm };
    to.audit.send({ type: "link.pin_failed", actor: `link:${link.id}`, detail });
    if (check.why === "locked") {
      to.audit.send({ type: "link.locked", actor: `link:${link.id}`, detail: { ...detail, pinFailures: MAX_PIN_FAILURES } });
      return { ok: false, status: 410, code: "link_locked", message: LINK_ENDED.locked };
    }
    const tries = check.left === 1 ? "1 more wrong PIN locks" : `${check.left} more wrong PINs lock`;
    return { ok: false, status: 403, code: "wrong_pin", message: `Wrong PIN: ${tries} this link.` };
  }
  const { ticket, expiresAt } = await to.tickets.issue({ hypervisor: link.hypervisor, vm: link.vm, user: `link:${link.id}`, viewOnly: link.viewOnly, via: "pin" });
  return { ok: true, pass: ticket, expiresAt };
}
