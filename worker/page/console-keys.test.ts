import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { describeClose, isPassingClose } from "./close-reasons.ts";
import { KEY_COMBOS, typedKeysyms } from "./console-keys.ts";

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

describe("which closes the page reconnects after", () => {
  it("retries drops of the network, edge or connector, and stops on final causes", () => {
    for (const code of [1006, 1001, 1012, CloseCode.connectorOffline, CloseCode.upstreamFailed, CloseCode.upstreamTimeout]) expect(isPassingClose(code)).toBe(true);
    for (const code of [1000, CloseCode.gone, CloseCode.forbidden, CloseCode.unauthorized, CloseCode.terminated, CloseCode.idle, CloseCode.ended, CloseCode.vmNotRunning]) expect(isPassingClose(code)).toBe(false);
    expect(isPassingClose(CloseCode.upstreamFailed, "The VM is powered off: start it, then open its console.")).toBe(false);
    expect(isPassingClose(CloseCode.upstreamFailed, "The VM is suspended: start it, then open its console.")).toBe(false);
    expect(describeClose(CloseCode.idle, "")).toMatch(/without input/);
    expect(describeClose(CloseCode.vmNotRunning, "")).toMatch(/not running/);
  });
});
