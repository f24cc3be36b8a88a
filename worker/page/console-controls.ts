/**
 * The console page's toolbar: key combinations, the clipboard both ways, fit/1:1, fullscreen and
 * the screenshot. Each works on whichever console is live (`live()`), none while there is none.
 */
import type RFB from "@novnc/novnc";
import { beyondLatin1, KEY_COMBOS, MAX_TYPED_CHARACTERS, typedKeysyms } from "./console-keys.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/**
 * Whether the server offered the extended clipboard (UTF-8 text). noVNC keeps this to itself and
 * falls back to Latin-1 without one; the page reads noVNC's field (pinned with noVNC 1.7, which the
 * page bundles) and, should it ever be missing, assumes the plain clipboard: a warning too many.
 */
function extendedClipboard(r: RFB): boolean {
  const formats = (r as unknown as { _clipboardServerCapabilitiesFormats?: Record<number, unknown> })._clipboardServerCapabilitiesFormats;
  return Boolean(formats?.[1]);
}

export interface Controls {
  enable(on: boolean, viewOnly: boolean): void;
  /** What the VM copied, offered for the person's clipboard. */
  serverClipboard(text: string): void;
}

export function setupControls(live: () => RFB | null, title: HTMLElement): Controls {
  const cad = $<HTMLButtonElement>("cad");
  const keysMenu = $<HTMLDetailsElement>("keys-menu");
  const keysBox = $("keys");
  const clipboardMenu = $<HTMLDetailsElement>("clipboard-menu");
  const pasteText = $<HTMLTextAreaElement>("paste-text");
  const pasteMessage = $("paste-message");
  const serverText = $<HTMLTextAreaElement>("server-text");
  const serverCopy = $<HTMLButtonElement>("server-copy");
  const scaleButton = $<HTMLButtonElement>("scale");
  const screenshotButton = $<HTMLButtonElement>("screenshot");
  let fitToWindow = true;

  for (const combo of KEY_COMBOS) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = combo.label;
    b.disabled = true;
    b.setAttribute("aria-label", `Send ${combo.label}`);
    b.addEventListener("click", () => {
      const rfb = live();
      if (!rfb) return;
      for (const [keysym, code] of combo.keys) rfb.sendKey(keysym, code, true);
      for (const [keysym, code] of [...combo.keys].reverse()) rfb.sendKey(keysym, code, false);
      keysMenu.open = false;
      rfb.focus();
    });
    keysBox.append(b);
  }
  cad.addEventListener("click", () => live()?.sendCtrlAltDel());

  function pasteRefused(text: string): boolean {
    if (text.length <= MAX_TYPED_CHARACTERS) return false;
    pasteMessage.textContent = `That is ${text.length.toLocaleString()} characters; the limit is ${MAX_TYPED_CHARACTERS.toLocaleString()}. Nothing was sent.`;
    return true;
  }

  $("paste-read").addEventListener("click", async () => {
    try {
      pasteText.value = await navigator.clipboard.readText();
      pasteMessage.textContent = "";
    } catch {
      pasteMessage.textContent = "The browser did not allow reading the clipboard: paste into the box instead (Ctrl+V).";
    }
  });
  $("paste-send").addEventListener("click", () => {
    const text = pasteText.value;
    const rfb = live();
    if (!rfb || pasteRefused(text)) return;
    const lost = extendedClipboard(rfb) ? null : beyondLatin1(text);
    if (lost) {
      // Sending would put "?" in the VM's clipboard: say so and offer typing, which carries any character.
      pasteMessage.textContent = `This VM's clipboard takes Latin-1 text only: ${lost.count} character${lost.count === 1 ? "" : "s"} (such as ${lost.first}) would arrive as "?". Nothing was sent: use Type it instead.`;
      return;
    }
    rfb.clipboardPasteFrom(text);
    pasteMessage.textContent = "Sent to the VM's clipboard.";
  });
  $("paste-type").addEventListener("click", () => {
    const text = pasteText.value;
    const rfb = live();
    if (!rfb || pasteRefused(text)) return;
    const { keysyms, skipped } = typedKeysyms(text);
    for (const k of keysyms) rfb.sendKey(k, null);
    pasteMessage.textContent = `Typed ${keysyms.length} keys${skipped ? `; ${skipped} characters that have no key were left out` : ""}.`;
    clipboardMenu.open = false;
    rfb.focus();
  });
  serverCopy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(serverText.value);
    } catch {
      serverText.select();
    }
  });

  scaleButton.addEventListener("click", () => {
    fitToWindow = !fitToWindow;
    scaleButton.setAttribute("aria-pressed", String(fitToWindow));
    scaleButton.textContent = fitToWindow ? "Fit to window" : "1:1";
    document.body.classList.toggle("one-to-one", !fitToWindow);
    const rfb = live();
    if (rfb) rfb.scaleViewport = fitToWindow;
  });
  const fullscreenButton = $("fullscreen");
  fullscreenButton.setAttribute("aria-pressed", "false");
  fullscreenButton.addEventListener("click", () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    // Refused e.g. inside a frame without allowfullscreen: say so on the button, keep the console.
    else void document.documentElement.requestFullscreen().catch(() => (fullscreenButton.title = "The browser refused fullscreen for this page."));
  });
  // Esc and the browser's own controls leave fullscreen too: the button follows the document.
  document.addEventListener("fullscreenchange", () => fullscreenButton.setAttribute("aria-pressed", String(document.fullscreenElement !== null)));
  screenshotButton.addEventListener("click", () => {
    live()?.toBlob((blob) => {
      if (!blob) return;
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `${(title.textContent || "console").replace(/[^\w.-]+/g, "-")}-${new Date().toISOString().replace(/[:.]/g, "-")}.png`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    }, "image/png");
  });

  return {
    /** Input controls only for a live console that is not view-only; the screenshot for any live one. */
    enable(on: boolean, viewOnly: boolean) {
      const input = on && !viewOnly;
      cad.disabled = !input;
      for (const b of keysBox.querySelectorAll("button")) b.disabled = !input;
      for (const id of ["paste-read", "paste-send", "paste-type"]) $<HTMLButtonElement>(id).disabled = !input;
      pasteText.disabled = !input;
      screenshotButton.disabled = !on;
      const rfb = live();
      if (rfb) rfb.scaleViewport = fitToWindow;
    },
    serverClipboard(text: string) {
      serverText.value = text;
      serverCopy.disabled = text === "";
    },
  };
}
