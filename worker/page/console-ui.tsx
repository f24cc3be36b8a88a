/**
 * The console page's components (hono/jsx/dom, as the operator app): the bar with the toolbar,
 * the readout and the status line; the idle warning, the reconnect countdown, the stall notice,
 * the consent prompt and the final notice. They render the session's view (console-session.ts) and
 * call its methods; the toolbar acts on the live console's noVNC (console-rfb.ts). noVNC's own
 * element (`#screen`) is the page's, outside this tree. Accessible names are the interface the e2e
 * tests find controls by: keep them as they are.
 */
import type { WatchingView } from "./console-watching.ts";
import type { JoinRequestView } from "./console-joins.ts";
import type RFB from "@novnc/novnc";
import { useEffect, useRef, useState } from "hono/jsx/dom";
import { clipboardDecision, typingDecision } from "./console-clipboard.ts";
import { KEY_COMBOS } from "./console-keys.ts";
import type { LiveConsole } from "./console-rfb.ts";
import type { ConsoleSession, ConsoleView } from "./console-session.ts";

type Session = ConsoleSession<LiveConsole>;

/** The session's view, rendered again on each change. */
function useView(session: Session): ConsoleView {
  const [view, setView] = useState(session.view);
  useEffect(() => {
    setView(session.view);
    return session.subscribe(setView);
  }, []);
  return view;
}

/**
 * Whether the server offered the extended clipboard (UTF-8 text). noVNC keeps this to itself and
 * falls back to Latin-1 without one; the page reads noVNC's field (pinned with noVNC 1.7, which the
 * page bundles) and, should it ever be missing, assumes the plain clipboard: a warning too many.
 */
function extendedClipboard(r: RFB): boolean {
  const formats = (r as unknown as { _clipboardServerCapabilitiesFormats?: Record<number, unknown> })._clipboardServerCapabilitiesFormats;
  return Boolean(formats?.[1]);
}

export function ConsolePage({ session }: { session: Session }) {
  const view = useView(session);
  return (
    <>
      <header>
        <strong>Porthole</strong>
        <span id="title">{view.title}</span>
        <span id="badge" data-time-left={view.timeLeft === null ? undefined : String(view.timeLeft)}>
          {view.badge}
        </span>
        <Toolbar session={session} view={view} />
        <span
          id="stats"
          role="group"
          aria-label="Connection quality"
          title="Round trip: a small request to Porthole's edge and back, every 5 s. Received: bytes of console data per second."
        >
          <span id="rtt">{view.rtt}</span> · <span id="rate">{view.rate}</span>
        </span>
        <span id="recorded" role="status" hidden={!view.recorded}>
          This console is recorded
        </span>
        <span id="status" role="status">
          {view.status}
        </span>
      </header>
      <div id="idle-warning" role="alert" hidden={view.idle === null}>
        {view.idle ?? ""}
      </div>
      <div id="reconnect" role="status" hidden={view.reconnect === null}>
        <span id="reconnect-text">{view.reconnect ?? ""}</span>{" "}
        <button id="reconnect-now" type="button" onClick={() => void session.reconnectNow()}>
          Reconnect now
        </button>
      </div>
      <div id="stalled" role="status" hidden={view.stalled === null}>
        {view.stalled ?? ""}
      </div>
      <ConsentPrompt question={view.confirm} onOpen={() => session.consent()} />
      <PinPrompt ask={view.pin} onJoin={(pin) => session.submitPin(pin)} />
      <NamePrompt ask={view.join} onAsk={(name) => session.submitName(name)} />
      <div id="waiting" role="status" hidden={view.waiting === null}>
        {view.waiting ?? ""}
      </div>
      <JoinRequests requests={view.joinRequests} onAnswer={(id, allow) => void session.answerJoin(id, allow)} />
      <WatchingNow watching={view.watching} />
      <div id="notice" role="alert" hidden={view.notice === null}>
        {view.notice ?? ""}
      </div>
    </>
  );
}

/** Who else is on this VM's console right now, and who just came or went (announced). */
function WatchingNow({ watching }: { watching: WatchingView | null }) {
  if (!watching) return null;
  return (
    <section id="watching" aria-labelledby="watching-title">
      <h2 id="watching-title">Watching now</h2>
      <ul aria-label="Watching now">
        {watching.people.map((p, i) => (
          <li key={i}>
            {p.name}
            {p.viewOnly ? " (view only)" : ""}
          </li>
        ))}
        {watching.more > 0 && <li>and {watching.more} more</li>}
      </ul>
      <p id="watching-change" role="status">
        {watching.change ?? ""}
      </p>
    </section>
  );
}

type Ask = { vm: string; problem: string | null } | null;

/** A share link's PIN (given apart from the link), before any socket is opened. */
function PinPrompt({ ask, onJoin }: { ask: Ask; onJoin: (pin: string) => void }) {
  return (
    <FieldPrompt id="pin" ask={ask} onSubmit={onJoin} clear title={(vm) => `This link to ${vm} needs a PIN`} label="PIN" button="Join"
      text="Whoever shared the link gave you a six-digit PIN separately."
      input={{ inputMode: "numeric", autoComplete: "off", maxLength: 6, pattern: "[0-9]{6}" }} />
  );
}

/** A link that asks before each viewer joins: who is asking, as the people in control will see it. */
function NamePrompt({ ask, onAsk }: { ask: Ask; onAsk: (name: string) => void }) {
  return (
    <FieldPrompt id="join" ask={ask} onSubmit={onAsk} title={(vm) => `Ask to watch ${vm}`} label="Your name" button="Ask to join"
      text="Someone in control of this console lets each viewer in. Say who you are; they see your name."
      input={{ autoComplete: "name", maxLength: 60 }} />
  );
}

/**
 * One field asked for before any socket, with the edge's words for why the last answer failed.
 * `clear`: empty the field as it is submitted (a PIN is typed afresh; a name is kept to be
 * corrected). Emptied then, not when the next ask renders: an effect runs after the render, and
 * would wipe what the person already started typing into the new prompt.
 */
function FieldPrompt(props: {
  id: string;
  ask: Ask;
  onSubmit: (value: string) => void;
  clear?: boolean;
  title: (vm: string) => string;
  text: string;
  label: string;
  button: string;
  input: Record<string, string | number>;
}) {
  const { id, ask } = props;
  const field = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (ask !== null) field.current?.focus();
  }, [ask]);
  return (
    <form
      id={`${id}-form`}
      class="confirm"
      aria-labelledby={`${id}-title`}
      hidden={ask === null}
      onSubmit={(e: Event) => {
        e.preventDefault();
        const value = field.current?.value ?? "";
        if (props.clear && field.current) field.current.value = "";
        props.onSubmit(value);
      }}
    >
      <h1 id={`${id}-title`}>{ask ? props.title(ask.vm) : ""}</h1>
      <p>{props.text}</p>
      {ask?.problem && (
        <p id={`${id}-problem`} role="alert">
          {ask.problem}
        </p>
      )}
      <label for={`${id}-field`}>{props.label}</label>
      <input id={`${id}-field`} ref={field} {...props.input} required />
      <button id={`${id}-submit`} type="submit">
        {props.button}
      </button>
    </form>
  );
}

/** Viewers waiting on a share link that asks first: Allow or Deny each (people in control only). */
function JoinRequests({ requests, onAnswer }: { requests: JoinRequestView[]; onAnswer: (id: string, allow: boolean) => void }) {
  if (requests.length === 0) return null;
  return (
    <section id="join-requests" aria-label="Waiting to join">
      {requests.map((r) => (
        <div key={r.id} class="join-request" role="group" aria-label={r.text}>
          <span>{r.text}</span>{" "}
          <button type="button" onClick={() => onAnswer(r.id, true)}>
            Allow
          </button>{" "}
          <button type="button" onClick={() => onAnswer(r.id, false)}>
            Deny
          </button>
          {r.problem && <span role="alert"> {r.problem}</span>}
        </div>
      ))}
    </section>
  );
}

/** "Open the console of web-1 on dc1?": the person's click before the page uses their session. */
function ConsentPrompt({ question, onOpen }: { question: string | null; onOpen: () => void }) {
  const button = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (question !== null) button.current?.focus();
  }, [question]);
  return (
    <section id="confirm" class="confirm" aria-labelledby="confirm-title" hidden={question === null}>
      <h1 id="confirm-title">{question ?? ""}</h1>
      <p>
        This console was not opened from Porthole itself but from a link. Opening it gives you control of this VM's screen, keyboard and mouse in your name:
        open it only if you meant to.
      </p>
      <button id="confirm-open" ref={button} type="button" onClick={onOpen}>
        Open console
      </button>
    </section>
  );
}

/** Ctrl+Alt+Del, Keys, Clipboard, Fit to window / 1:1, Fullscreen, Screenshot: each on the live console. */
function Toolbar({ session, view }: { session: Session; view: ConsoleView }) {
  const input = view.controls === "input";
  const keysMenu = useRef<HTMLDetailsElement>(null);
  const live = () => session.live?.rfb ?? null;
  const sendCombo = (keys: [number, string][]) => {
    const rfb = live();
    if (!rfb) return;
    for (const [keysym, code] of keys) rfb.sendKey(keysym, code, true);
    for (const [keysym, code] of [...keys].reverse()) rfb.sendKey(keysym, code, false);
    keysMenu.current!.open = false;
    rfb.focus();
  };
  const screenshot = () => {
    live()?.toBlob((blob) => {
      if (!blob) return;
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `${(view.title || "console").replace(/[^\w.-]+/g, "-")}-${new Date().toISOString().replace(/[:.]/g, "-")}.png`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    }, "image/png");
  };
  useEffect(() => {
    document.body.classList.toggle("one-to-one", !view.fitToWindow);
  }, [view.fitToWindow]);
  return (
    <nav id="toolbar" aria-label="Console controls">
      <button id="cad" type="button" disabled={!input} onClick={() => live()?.sendCtrlAltDel()}>
        Ctrl+Alt+Del
      </button>
      {/* Neither keys nor the clipboard for a view-only console (the edge drops its input too). */}
      <details id="keys-menu" class="menu" ref={keysMenu} hidden={view.viewOnly}>
        <summary title="Send a key combination">Keys</summary>
        <div id="keys" role="group" aria-label="Key combinations">
          {KEY_COMBOS.map((combo) => (
            <button type="button" disabled={!input} aria-label={`Send ${combo.label}`} onClick={() => sendCombo(combo.keys)}>
              {combo.label}
            </button>
          ))}
        </div>
      </details>
      <ClipboardMenu live={live} input={input} hidden={view.viewOnly} fromVm={view.fromVm} />
      <button
        id="scale"
        type="button"
        aria-pressed={String(view.fitToWindow)}
        title="Fit the screen to the window, or show it at 1:1 with scrollbars"
        onClick={() => session.setFit(!view.fitToWindow)}
      >
        {view.fitToWindow ? "Fit to window" : "1:1"}
      </button>
      <FullscreenButton />
      <button id="screenshot" type="button" disabled={view.controls === "off"} onClick={screenshot}>
        Screenshot
      </button>
    </nav>
  );
}

/** Text to the VM (its clipboard, or typed as keys) and what the VM copied, back to the person's clipboard. */
function ClipboardMenu({ live, input, hidden, fromVm }: { live: () => RFB | null; input: boolean; hidden: boolean; fromVm: string }) {
  const menu = useRef<HTMLDetailsElement>(null);
  const text = useRef<HTMLTextAreaElement>(null);
  const copied = useRef<HTMLTextAreaElement>(null);
  const [message, setMessage] = useState("");
  const read = async () => {
    try {
      text.current!.value = await navigator.clipboard.readText();
      setMessage("");
    } catch {
      setMessage("The browser did not allow reading the clipboard: paste into the box instead (Ctrl+V).");
    }
  };
  const send = () => {
    const rfb = live();
    if (!rfb) return;
    const decision = clipboardDecision(text.current!.value, extendedClipboard(rfb));
    if (decision.send) rfb.clipboardPasteFrom(text.current!.value);
    setMessage(decision.message);
  };
  const type = () => {
    const rfb = live();
    if (!rfb) return;
    const typing = typingDecision(text.current!.value);
    setMessage(typing.message);
    if (!typing.send) return;
    for (const k of typing.keysyms) rfb.sendKey(k, null);
    menu.current!.open = false;
    rfb.focus();
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(fromVm);
    } catch {
      copied.current?.select();
    }
  };
  return (
    <details id="clipboard-menu" class="menu" ref={menu} hidden={hidden}>
      <summary title="Send text to the VM, or copy what it copied">Clipboard</summary>
      <div class="menu-body">
        <label for="paste-text">Text to send to the VM</label>
        <textarea id="paste-text" ref={text} rows={4} cols={40} disabled={!input} />
        <div class="row">
          <button id="paste-read" type="button" disabled={!input} onClick={read}>
            Paste from my clipboard
          </button>
          <button id="paste-send" type="button" disabled={!input} onClick={send}>
            Send as clipboard
          </button>
          <button id="paste-type" type="button" disabled={!input} onClick={type}>
            Type it
          </button>
        </div>
        <p id="paste-message" role="status">
          {message}
        </p>
        <label for="server-text">Text copied in the VM</label>
        <textarea id="server-text" ref={copied} rows={3} cols={40} readonly value={fromVm} />
        <button id="server-copy" type="button" disabled={fromVm === ""} onClick={copy}>
          Copy to my clipboard
        </button>
      </div>
    </details>
  );
}

/** Follows the document: Esc and the browser's own controls leave fullscreen too. */
function FullscreenButton() {
  const [on, setOn] = useState(false);
  const [refused, setRefused] = useState<string | undefined>(undefined);
  useEffect(() => {
    const follow = () => setOn(document.fullscreenElement !== null);
    document.addEventListener("fullscreenchange", follow);
    return () => document.removeEventListener("fullscreenchange", follow);
  }, []);
  const toggle = () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    // Refused e.g. inside a frame without allowfullscreen: say so on the button, keep the console.
    else void document.documentElement.requestFullscreen().catch(() => setRefused("The browser refused fullscreen for this page."));
  };
  return (
    <button id="fullscreen" type="button" aria-pressed={String(on)} title={refused} onClick={toggle}>
      Fullscreen
    </button>
  );
}
