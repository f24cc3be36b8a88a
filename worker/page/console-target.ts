/**
 * Where the page's console comes from: a share link (reused while it lives), a ticket in the
 * fragment (single use, dropped from the address bar once read), or the person's session (a fresh
 * ticket for each reconnect, after their consent when another site sent them: console-consent.ts).
 * A string is the edge's final word, shown as the page's notice; a throw is the edge's trouble or
 * silence, retried with the countdown (console-session.ts). Nothing happens at import.
 */
import { ApiFailure, type ApiClient } from "../../shared/api/client.ts";
import type { ConsoleOpened, LinkJoinAsked, LinkStatus } from "../../shared/api/types.ts";
import { lookUntilAnswered } from "../../shared/api/link-join.ts";
import { consoleSocketPath, linkSocketPath } from "../../shared/urls/console.ts";
import type { ConsentGate } from "./console-consent.ts";
import { clock, type Target } from "./console-session.ts";

export interface TargetDeps {
  api: Pick<ApiClient, "call">;
  consent: Pick<ConsentGate, "confirm">;
  /** The page's address: `/console` or `/l/<site>`, and the fragment without "#". */
  pathname: string;
  hash: string;
  /** history.replaceState with this path (the ticket dropped from it). */
  replaceUrl(url: string): void;
  /** Asks the person for a share link's PIN (`problem`: why the last one failed); resolves with it. */
  askPin(vm: string, problem: string | null): Promise<string>;
  /** Asks a link's viewer for the name the people in control will see. */
  askName(vm: string, problem: string | null): Promise<string>;
  /** What the page says while the viewer waits to be let in (null: no longer waiting). */
  waiting(text: string | null): void;
  /** Default: setTimeout. */
  sleep?: (ms: number) => Promise<void>;
}


/** A refusal is the edge's final word, said as it said it; its trouble (5xx) or silence is thrown, to retry. */
function refusal(err: unknown, otherwise: string): string {
  if (!(err instanceof ApiFailure) || err.status === 0 || err.status >= 500) throw err;
  return err.fromEdge ? err.message : otherwise;
}

/** What a share link's page remembers for its reconnects: the PIN, the name, the request that let it in. */
interface Known {
  pin: string | null;
  name: string | null;
  join: { id: string; token: string } | null;
}

/** The page's first target; each target's `again` gives the next. */
export function firstTarget(deps: TargetDeps): () => Promise<Target | string> {
  const { api, consent } = deps;

  /**
   * A share link: reusable while it lives; the status request says whether it still does. A link
   * with a PIN asks the person for it, trades it for a single-use pass (`POST /l/:site/pin`), and
   * remembers it for reconnects (each one needs a new pass); the PIN never goes in a URL. A link
   * that asks before each viewer joins then asks for a name and waits to be let in (waitToJoin); a
   * reconnect soon after a drop is let in again on the same request, later ones ask again.
   */
  async function linkTarget(site: string, secret: string, known: Known = { pin: null, name: null, join: null }): Promise<Target | string> {
    // The secret travels in a header, never in a URL that a server or proxy would log.
    const headers = { "X-Porthole-Link": secret };
    let body: LinkStatus;
    try {
      body = await api.call("GET /l/:site/status", { params: { site }, headers });
    } catch (err) {
      return refusal(err, "This link no longer works.");
    }
    let pin = known.pin;
    let pass: string | null = null;
    if (body.pin) {
      let problem: string | null = null;
      for (;;) {
        pin ??= await deps.askPin(body.vm, problem);
        try {
          ({ pass } = await api.call("POST /l/:site/pin", { params: { site }, headers, body: { pin } }));
          break;
        } catch (err) {
          // A wrong or malformed PIN: ask again with the edge's words (how many tries are left).
          if (err instanceof ApiFailure && (err.status === 403 || err.status === 400)) {
            problem = err.message;
            pin = null;
            continue;
          }
          return refusal(err, "This link no longer works.");
        }
      }
    }
    let name = known.name;
    let join = known.join;
    if (body.approval) {
      const back = join ? await rejoin(site, headers, join) : null;
      if (back) pass = back;
      else {
        const joined = await waitToJoin(site, headers, body.vm, pass, name);
        if (typeof joined === "string") return joined;
        ({ pass, name, join } = joined);
      }
    }
    return {
      site,
      socketPath: linkSocketPath(site, secret) + (pass ? `&pass=${encodeURIComponent(pass)}` : ""),
      viewOnly: body.viewOnly === true,
      expiresAt: Date.parse(body.expiresAt),
      vmName: body.vm,
      again: () => linkTarget(site, secret, { pin, name, join }),
    };
  }

  /** The pass for coming back on a request that let us in, if the edge still holds our seat; else null. */
  async function rejoin(site: string, headers: Record<string, string>, join: { id: string; token: string }): Promise<string | null> {
    try {
      const state = await api.call("GET /l/:site/join/:id", { params: { site, id: join.id }, headers: { ...headers, "X-Porthole-Join": join.token } });
      return state.state === "allowed" && state.pass ? state.pass : null;
    } catch {
      return null;
    }
  }

  /**
   * Asks to join as a name (the PIN's pass first, if any), then looks every JOIN_LOOK_MS until
   * someone in control answers or the edge's deadline passes; resolves with the socket's pass, or
   * the edge's words for why not. The viewer holds no socket meanwhile: nothing of the screen.
   */
  async function waitToJoin(
    site: string,
    headers: Record<string, string>,
    vm: string,
    pinPass: string | null,
    known: string | null,
  ): Promise<{ pass: string; name: string; join: { id: string; token: string } } | string> {
    let name = known;
    let problem: string | null = null;
    let asked: LinkJoinAsked;
    for (;;) {
      name ??= await deps.askName(vm, problem);
      try {
        asked = await api.call("POST /l/:site/join", { params: { site }, headers, body: { name, ...(pinPass ? { pass: pinPass } : {}) } });
        break;
      } catch (err) {
        // A name the edge will not show: ask again with its words.
        if (err instanceof ApiFailure && err.status === 400 && err.fromEdge) {
          problem = err.message;
          name = null;
          continue;
        }
        return refusal(err, "This link no longer works.");
      }
    }
    try {
      const state = await lookUntilAnswered(api, site, headers["X-Porthole-Link"]!, asked, {
        sleep: deps.sleep,
        waiting: (left) => deps.waiting(`Waiting for someone in control of ${vm} to let you in (${clock(left)} left).`),
      });
      if (state.state === "allowed" && state.pass) return { pass: state.pass, name, join: { id: asked.id, token: asked.token } };
      return state.message;
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 0) return "Nobody answered in time, and Porthole cannot be reached: open the link again later.";
      return refusal(err, "This link no longer works.");
    } finally {
      deps.waiting(null);
    }
  }

  /**
   * A signed-in console: its ticket is single use, so a reconnect asks the session for a new one
   * (POST /api/consoles with the cookie), which needs the hypervisor and VM from the fragment.
   */
  async function freshTicket(site: string, hypervisor: string | null, vm: string | null, viewOnly: boolean): Promise<Target | string> {
    if (!hypervisor || !vm) return "The connection was lost. Open the console again from Porthole.";
    await consent.confirm(site, vm);
    let body: ConsoleOpened;
    try {
      body = await api.call("POST /api/consoles", { body: { site, hypervisor, vm } });
    } catch (err) {
      // The connector may still be on its way back: keep trying (thrown). Anything else is a final answer.
      if (err instanceof ApiFailure && err.status === 401) return "You are signed out of Porthole. Sign in and open the console again.";
      return refusal(err, "Porthole refused a new console.");
    }
    if (!body?.pageUrl) return "Porthole refused a new console.";
    const fragment = new URLSearchParams(new URL(body.pageUrl).hash.slice(1));
    const ticket = fragment.get("ticket");
    if (!ticket) return "Porthole answered without a console ticket.";
    return {
      site,
      socketPath: consoleSocketPath(site, ticket),
      viewOnly: viewOnly || fragment.get("view") === "1",
      vmName: vm,
      again: () => freshTicket(site, hypervisor, vm, viewOnly),
    };
  }

  /** A share link page (/l/<site>#<secret>) or a one-off console (/console#site=…&ticket=…). */
  return async function target(): Promise<Target | string> {
    const link = /^\/l\/([^/]+)$/.exec(deps.pathname);
    if (link) {
      const site = decodeURIComponent(link[1]!);
      const secret = decodeURIComponent(deps.hash);
      if (!secret) return "This console link is incomplete. Check that you copied all of it.";
      return linkTarget(site, secret);
    }
    const params = new URLSearchParams(deps.hash);
    const site = params.get("site");
    const ticket = params.get("ticket");
    const hypervisor = params.get("hypervisor");
    const vm = params.get("vm");
    const viewOnly = params.get("view") === "1";
    // A reload after the ticket was spent: the session can give a fresh one.
    if (site && !ticket && hypervisor && vm) return freshTicket(site, hypervisor, vm, viewOnly);
    if (!site || !ticket) return "This console link is incomplete. Open the console again from Porthole.";
    // The ticket is single use: drop it from the address bar so a reload does not look like a replay.
    // What names the console (no secret) stays, so the page can ask for a fresh ticket.
    params.delete("ticket");
    deps.replaceUrl(`${deps.pathname}${hypervisor && vm ? `#${params}` : ""}`);
    return { site, socketPath: consoleSocketPath(site, ticket), viewOnly, vmName: vm ?? undefined, again: () => freshTicket(site, hypervisor, vm, viewOnly) };
  };
}
