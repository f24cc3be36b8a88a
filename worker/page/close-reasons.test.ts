import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { CloseRecord, describeClose, describeFetchError, isPassingClose, reconnectDelay } from "./close-reasons.ts";

describe("which closes the page reconnects after", () => {
  it("retries drops of the network, edge, connector and VNC server", () => {
    for (const code of [1006, 1001, 1011, 1012, CloseCode.ended, CloseCode.connectorOffline, CloseCode.upstreamFailed, CloseCode.upstreamTimeout, CloseCode.internal, CloseCode.tooSlow]) {
      expect(isPassingClose(code), String(code)).toBe(true);
    }
  });

  it("stops on final causes: revoked, expired, ended by a person, access ended, idle, VM off, refused", () => {
    for (const code of [1000, CloseCode.gone, CloseCode.forbidden, CloseCode.unauthorized, CloseCode.notFound, CloseCode.terminated, CloseCode.idle, CloseCode.vmNotRunning, CloseCode.badRequest, CloseCode.upgradeRequired]) {
      expect(isPassingClose(code), String(code)).toBe(false);
    }
    expect(isPassingClose(CloseCode.upstreamFailed, "The VM is powered off: start it, then open its console.")).toBe(false);
    expect(isPassingClose(CloseCode.upstreamFailed, "The VM is suspended: start it, then open its console.")).toBe(false);
    expect(isPassingClose(CloseCode.upstreamFailed, "The VM is not running, or it moved to another host.")).toBe(true);
  });

  it("retries a VNC server's temporary refusal but not a wrong password", () => {
    expect(isPassingClose(CloseCode.forbidden, "The console refused the connection: Too many security failures.")).toBe(true);
    expect(isPassingClose(CloseCode.forbidden, "The console refused the connection: Authentication failed.")).toBe(false);
  });

  it("backs off from 1 s doubling to 30 s", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 10].map(reconnectDelay)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  it("says why in words", () => {
    expect(describeClose(CloseCode.idle, "")).toMatch(/without input/);
    expect(describeClose(CloseCode.vmNotRunning, "")).toMatch(/not running/);
    expect(describeClose(CloseCode.ended, "The console ended.")).toBe("The console ended.");
  });

  it("says the edge cannot be reached instead of the browser's 'Failed to fetch'", () => {
    expect(describeFetchError(new TypeError("Failed to fetch"))).toBe("Cannot reach Porthole: the network or Porthole's edge is down.");
    expect(describeFetchError(new TypeError("NetworkError when attempting to fetch resource."))).toMatch(/^Cannot reach Porthole/);
    expect(describeFetchError(new Error("The edge answered 503."))).toBe("The edge answered 503.");
  });
});

describe("when the page may use the person's session at once", () => {
  it("only after the person's own navigation, as the edge saw it, and unless asked to ask", async () => {
    const { sessionTrusted } = await import("./console-consent.ts");
    expect(sessionTrusted("same-origin", null)).toBe(true);
    expect(sessionTrusted("same-origin", "1")).toBe(false);
    expect(sessionTrusted("cross-site", null)).toBe(false);
    expect(sessionTrusted(undefined, null)).toBe(false);
  });
});

describe("why one socket closed", () => {
  it("takes the socket's close, described", () => {
    const r = new CloseRecord();
    expect([r.code, r.text]).toEqual([1006, null]);
    r.socketClosed(CloseCode.terminated, "");
    expect(r).toMatchObject({ code: CloseCode.terminated, reason: "", text: "This console was ended by someone." });
  });

  it("keeps a security failure over noVNC's own close after it", () => {
    const r = new CloseRecord();
    r.securityFailure("Too many security failures");
    r.socketClosed(1000, "");
    expect(r).toMatchObject({ code: CloseCode.forbidden, reason: "Too many security failures", text: "The console refused the connection: Too many security failures." });
    expect(isPassingClose(r.code, r.reason)).toBe(true);
  });
});
