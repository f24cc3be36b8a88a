/**
 * What the Clipboard menu does with the text to send, and what it says: pure decisions, so they
 * are tested without a browser (console-ui.tsx carries them out on noVNC).
 */
import { beyondLatin1, MAX_TYPED_CHARACTERS, typedKeysyms } from "./console-keys.ts";

/** Too much text for one paste or typing: the message, or null when the length is fine. */
export function tooLong(text: string): string | null {
  if (text.length <= MAX_TYPED_CHARACTERS) return null;
  return `That is ${text.length.toLocaleString()} characters; the limit is ${MAX_TYPED_CHARACTERS.toLocaleString()}. Nothing was sent.`;
}

export type PasteDecision = { send: true; message: string } | { send: false; message: string };

/**
 * Send as clipboard. Without the extended clipboard (UTF-8) a VNC server takes Latin-1 only and
 * noVNC would put "?" in the VM's clipboard for anything else: refuse such text and offer typing,
 * which carries any character.
 */
export function clipboardDecision(text: string, extendedClipboard: boolean): PasteDecision {
  const long = tooLong(text);
  if (long) return { send: false, message: long };
  const lost = extendedClipboard ? null : beyondLatin1(text);
  if (lost) {
    return {
      send: false,
      message: `This VM's clipboard takes Latin-1 text only: ${lost.count} character${lost.count === 1 ? "" : "s"} (such as ${lost.first}) would arrive as "?". Nothing was sent: use Type it instead.`,
    };
  }
  return { send: true, message: "Sent to the VM's clipboard." };
}

/** Type it: the keysyms to send and what to say, or only a refusal (`send: false`). */
export function typingDecision(text: string): { send: boolean; keysyms: number[]; message: string } {
  const long = tooLong(text);
  if (long) return { send: false, keysyms: [], message: long };
  const { keysyms, skipped } = typedKeysyms(text);
  return { send: true, keysyms, message: `Typed ${keysyms.length} keys${skipped ? `; ${skipped} characters that have no key were left out` : ""}.` };
}
