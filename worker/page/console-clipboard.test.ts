import { describe, expect, it } from "vitest";
import { clipboardDecision, tooLong, typingDecision } from "./console-clipboard.ts";

describe("the Clipboard menu's decisions", () => {
  it("sends Latin-1 text as clipboard, and any text where the server has the extended clipboard", () => {
    expect(clipboardDecision("Grüße, café", false)).toEqual({ send: true, message: "Sent to the VM's clipboard." });
    expect(clipboardDecision("日本語 ✓", true)).toEqual({ send: true, message: "Sent to the VM's clipboard." });
  });

  it("refuses text beyond Latin-1 on a plain clipboard and offers Type it", () => {
    expect(clipboardDecision("a ✓ b", false)).toEqual({
      send: false,
      message: `This VM's clipboard takes Latin-1 text only: 1 character (such as ✓) would arrive as "?". Nothing was sent: use Type it instead.`,
    });
    expect(clipboardDecision("日本語", false).message).toMatch(/^This VM's clipboard takes Latin-1 text only: 3 characters \(such as 日\)/);
  });

  it("refuses more than 4,096 characters either way", () => {
    const long = "x".repeat(4097);
    expect(tooLong("x".repeat(4096))).toBeNull();
    expect(clipboardDecision(long, true)).toEqual({ send: false, message: "That is 4,097 characters; the limit is 4,096. Nothing was sent." });
    expect(typingDecision(long)).toMatchObject({ send: false, keysyms: [] });
  });

  it("types any character and says what had no key", () => {
    expect(typingDecision("a✓\n")).toEqual({ send: true, keysyms: [0x61, 0x01002713, 0xff0d], message: "Typed 3 keys." });
    expect(typingDecision("a\u0007b").message).toBe("Typed 2 keys; 1 characters that have no key were left out.");
  });
});
