import { describe, expect, it, vi } from "vitest";
import { ConsentGate, sessionTrusted } from "./console-consent.ts";

describe("consent before the page uses the person's session", () => {
  it("trusts only the person's own navigation without ask=1", () => {
    expect(sessionTrusted("same-origin", null)).toBe(true);
    expect(sessionTrusted("same-origin", "1")).toBe(false);
    expect(sessionTrusted("cross-site", null)).toBe(false);
    expect(sessionTrusted(undefined, null)).toBe(false);
  });

  it("asks once, then goes ahead", async () => {
    const ask = vi.fn(async () => {});
    const gate = new ConsentGate(false, ask);
    await gate.confirm("dc1", "web-1");
    await gate.confirm("dc1", "web-1");
    expect(ask).toHaveBeenCalledTimes(1);
    expect(ask).toHaveBeenCalledWith("dc1", "web-1");
  });

  it("does not ask a trusted page", async () => {
    const ask = vi.fn(async () => {});
    await new ConsentGate(true, ask).confirm("dc1", "web-1");
    expect(ask).not.toHaveBeenCalled();
  });
});
