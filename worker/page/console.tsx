/**
 * The console page's entry: the only module that acts at load. It reads the page's address and
 * the edge's verdict on the navigation, makes the session (console-session.ts: reconnects, stall
 * watch, readout), renders its components (console-ui.tsx) before noVNC's `#screen`, and keeps
 * body[data-state] (the page's CSS and the e2e tests) in step with the session.
 */
import { render } from "hono/jsx/dom";
import { apiClient } from "../../shared/api/client.ts";
import { ConsentGate, NAVIGATION_META, sessionTrusted } from "./console-consent.ts";
import { type LiveConsole, openConsole } from "./console-rfb.ts";
import { ConsoleSession } from "./console-session.ts";
import { firstTarget } from "./console-target.ts";
import { ConsolePage } from "./console-ui.tsx";

const screen = document.getElementById("screen")!;
const hash = location.hash.slice(1);
const api = apiClient({ init: () => ({ cache: "no-store", credentials: "same-origin" }) });
const navigation = document.querySelector(`meta[name="${NAVIGATION_META}"]`)?.getAttribute("content");

const session: ConsoleSession<LiveConsole> = new ConsoleSession({
  first: firstTarget({
    api,
    consent: new ConsentGate(sessionTrusted(navigation, new URLSearchParams(hash).get("ask")), (site, vm) => session.askConsent(site, vm)),
    pathname: location.pathname,
    hash,
    replaceUrl: (url) => history.replaceState(null, "", url),
    askPin: (vm, problem) => session.askPin(vm, problem),
    askName: (vm, problem) => session.askName(vm, problem),
    waiting: (text) => session.showWaiting(text),
  }),
  open: (target, events) => openConsole(screen, target, events),
  async ping() {
    const start = performance.now();
    const res = await fetch("/healthz", { cache: "no-store" });
    await res.arrayBuffer();
    return performance.now() - start;
  },
  async answerJoin(link, id, allow) {
    try {
      await api.call(allow ? "POST /api/links/:id/joins/:join/allow" : "POST /api/links/:id/joins/:join/deny", { params: { id: link, join: id } });
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : "Porthole did not take the answer.";
    }
  },
});

session.subscribe((view) => {
  if (view.state) document.body.dataset.state = view.state;
  if (view.viewOnly) document.body.dataset.viewOnly = "true";
});
// Only input on the screen reaches the VM (noVNC sends it): a key pressed in the toolbar, or the
// mouse over it, sends nothing, so neither hides the idle warning nor expects a picture.
for (const type of ["keydown", "pointerdown", "pointermove", "wheel"]) {
  screen.addEventListener(type, () => session.acted(), { capture: true, passive: true });
}
render(<ConsolePage session={session} />, document.getElementById("console-ui")!);
void session.start();
