import { describe, expect, it } from "vitest";
import { beyondLatin1, KEY_COMBOS, typedKeysyms } from "./console-keys.ts";

describe("typing text as key events", () => {
  it("types Latin-1 as its own keysyms, other Unicode as 0x01000000 + code point, newlines as Return", () => {
    expect(typedKeysyms("aZ!\né€\t")).toEqual({ keysyms: [0x61, 0x5a, 0x21, 0xff0d, 0xe9, 0x010020ac, 0xff09], skipped: 0 });
    expect(typedKeysyms("a\r\nb\x07")).toEqual({ keysyms: [0x61, 0xff0d, 0x62], skipped: 1 });
  });

  it("offers the combinations the browser would eat, each with scancode names for QEMU key events", () => {
    const labels = KEY_COMBOS.map((c) => c.label);
    expect(labels).toEqual(expect.arrayContaining(["Ctrl+Alt+Del", "Ctrl+Alt+F1", "Ctrl+Alt+F12", "Alt+Tab", "Windows key", "Print Screen"]));
    expect(KEY_COMBOS.find((c) => c.label === "Ctrl+Alt+F12")!.keys.at(-1)).toEqual([0xffc9, "F12"]);
  });
});

describe("clipboard text a plain RFB clipboard cannot carry", () => {
  it("finds characters beyond Latin-1 (they would arrive as '?')", () => {
    expect(beyondLatin1("héllo wörld ÿ")).toBeNull();
    expect(beyondLatin1("prix: 5 € ou 4 £, 東京")).toEqual({ count: 3, first: "€" });
    expect(beyondLatin1("😀")).toEqual({ count: 1, first: "😀" });
  });
});
