/**
 * Key combinations the browser or the OS would eat, and text typed as key events for consoles
 * without a clipboard (most hypervisor consoles). Keysyms are X11's (RFB KeyEvent); the `code`
 * lets noVNC send QEMU extended key events (scancodes) when the server offers them, so layouts
 * other than US reach XenServer/QEMU consoles as the keys a person meant.
 */

/** The most characters the page types or pastes at once: more is refused with a message. */
export const MAX_TYPED_CHARACTERS = 4096;

const XK = {
  Control_L: 0xffe3,
  Alt_L: 0xffe9,
  Delete: 0xffff,
  Tab: 0xff09,
  Super_L: 0xffeb,
  Print: 0xff61,
  F1: 0xffbe,
  Return: 0xff0d,
} as const;

export interface KeyCombo {
  label: string;
  /** Pressed in order, released in reverse. */
  keys: [keysym: number, code: string][];
}

export const KEY_COMBOS: KeyCombo[] = [
  { label: "Ctrl+Alt+Del", keys: [[XK.Control_L, "ControlLeft"], [XK.Alt_L, "AltLeft"], [XK.Delete, "Delete"]] },
  ...Array.from({ length: 12 }, (_, i): KeyCombo => ({
    label: `Ctrl+Alt+F${i + 1}`,
    keys: [[XK.Control_L, "ControlLeft"], [XK.Alt_L, "AltLeft"], [XK.F1 + i, `F${i + 1}`]],
  })),
  { label: "Alt+Tab", keys: [[XK.Alt_L, "AltLeft"], [XK.Tab, "Tab"]] },
  { label: "Windows key", keys: [[XK.Super_L, "MetaLeft"]] },
  { label: "Print Screen", keys: [[XK.Print, "PrintScreen"]] },
];

/**
 * Keysyms that type `text`: Latin-1 characters are their own keysym, other Unicode characters
 * 0x01000000 + code point (X11's rule); newlines are Return, tabs Tab; other control characters
 * have no key and are counted as skipped.
 */
export function typedKeysyms(text: string): { keysyms: number[]; skipped: number } {
  const keysyms: number[] = [];
  let skipped = 0;
  for (const ch of text.replace(/\r\n?/g, "\n")) {
    const cp = ch.codePointAt(0)!;
    if (ch === "\n") keysyms.push(XK.Return);
    else if (ch === "\t") keysyms.push(XK.Tab);
    else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) skipped++;
    else if (cp <= 0xff) keysyms.push(cp);
    else keysyms.push(0x01000000 + cp);
  }
  return { keysyms, skipped };
}

/**
 * Characters a plain RFB clipboard cannot carry. Without the extended clipboard (UTF-8) a server
 * gets ISO 8859-1 only, and noVNC turns anything else into "?": the page says so instead of
 * claiming the text was sent. Returns how many such characters and the first of them, or null.
 */
export function beyondLatin1(text: string): { count: number; first: string } | null {
  let count = 0;
  let first = "";
  for (const ch of text) {
    if (ch.codePointAt(0)! <= 0xff) continue;
    if (count++ === 0) first = ch;
  }
  return count ? { count, first } : null;
}
