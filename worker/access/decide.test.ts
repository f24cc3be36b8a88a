import { describe, expect, it } from "vitest";
import type { AccessLevel, Role } from "../../shared/api/types.ts";
import { atLeast, decide, type GrantScope, globMatches, roleLevel } from "./decide.ts";
import { endedReason } from "./review.ts";

const web1 = { site: "dc1", hypervisor: "pool1", id: "uuid-1", name: "web-1" };
const db1 = { site: "dc1", hypervisor: "pool1", id: "uuid-2", name: "db-1" };
const other = { site: "dc2", hypervisor: "pool1", id: "uuid-1", name: "web-1" };
const T = 1_000_000;

describe("roles alone", () => {
  it.each<[Role, AccessLevel | null]>([
    ["admin", "share"],
    ["operator", "share"],
    ["viewer", "view"],
    ["member", null],
    ["auditor", null],
  ])("%s gives %s on every VM", (role, level) => {
    expect(roleLevel(role)).toBe(level);
    expect(decide(role, [], web1, T)).toBe(level);
  });
});

describe("grants", () => {
  const g = (scope: Partial<GrantScope>): GrantScope => ({ site: "dc1", level: "view", ...scope });

  it("a whole site, one hypervisor, one VM, a pattern", () => {
    expect(decide("member", [g({})], web1, T)).toBe("view");
    expect(decide("member", [g({})], other, T)).toBeNull();
    expect(decide("member", [g({ hypervisor: "pool1" })], db1, T)).toBe("view");
    expect(decide("member", [g({ hypervisor: "pool2" })], db1, T)).toBeNull();
    expect(decide("member", [g({ hypervisor: "pool1", vm: "uuid-1" })], web1, T)).toBe("view");
    expect(decide("member", [g({ hypervisor: "pool1", vm: "uuid-1" })], db1, T)).toBeNull();
    expect(decide("member", [g({ vmPattern: "web-*" })], web1, T)).toBe("view");
    expect(decide("member", [g({ vmPattern: "web-*" })], db1, T)).toBeNull();
  });

  it("the most of role and grants wins; two groups' grants add up", () => {
    expect(decide("viewer", [g({ level: "control", vmPattern: "web-?" })], web1, T)).toBe("control");
    expect(decide("viewer", [g({ level: "control", vmPattern: "web-?" })], db1, T)).toBe("view");
    expect(decide("member", [g({ level: "view" }), g({ level: "share", vm: "uuid-2", hypervisor: "pool1" })], db1, T)).toBe("share");
    expect(decide("operator", [g({ level: "view" })], web1, T)).toBe("share");
  });

  it("auditors never get a console, whatever a grant says", () => {
    expect(decide("auditor", [g({ level: "share" })], web1, T)).toBeNull();
  });

  it("a window: nothing before from, nothing from until on", () => {
    const w = g({ from: T, until: T + 60_000 });
    expect(decide("member", [w], web1, T - 1)).toBeNull();
    expect(decide("member", [w], web1, T)).toBe("view");
    expect(decide("member", [w], web1, T + 59_999)).toBe("view");
    expect(decide("member", [w], web1, T + 60_000)).toBeNull();
  });
});

describe("globs", () => {
  it("* and ? only; everything else is literal; the whole name must match", () => {
    expect(globMatches("web-*", "web-1")).toBe(true);
    expect(globMatches("web-*", "xweb-1")).toBe(false);
    expect(globMatches("web-?", "web-12")).toBe(false);
    expect(globMatches("a.b", "axb")).toBe(false);
    expect(globMatches("(x|y)+[", "(x|y)+[")).toBe(true);
    expect(globMatches("*", "anything at all")).toBe(true);
    expect(globMatches("*-1", "web-1")).toBe(true);
    expect(globMatches("w*x*1", "web-1")).toBe(false);
    expect(globMatches("w*-*", "web-1")).toBe(true);
    expect(globMatches("", "")).toBe(true);
  });
  it("a hostile pattern costs time linear in its length times the name's", () => {
    // A backtracking matcher (a regular expression) takes exponential time here and never
    // finishes within the test's timeout; this one answers at once. No clock is read.
    expect(globMatches(`${"*a".repeat(60)}b`, "a".repeat(128))).toBe(false);
    expect(globMatches(`${"*a".repeat(60)}*`, "a".repeat(128))).toBe(true);
  });
});

describe("levels and reasons", () => {
  it("share includes control includes view", () => {
    expect(atLeast("share", "control")).toBe(true);
    expect(atLeast("control", "share")).toBe(false);
    expect(atLeast(null, "view")).toBe(false);
  });
  it("says what ended and when, within a close reason's 123 bytes", () => {
    expect(endedReason({ kind: "ended", at: Date.UTC(2026, 0, 1, 18, 0) }, "web-1", false)).toBe("Your access to web-1 ended at 18:00 UTC.");
    expect(endedReason({ kind: "removed", actor: "admin" }, "web-1", true)).toBe("Your access to web-1 was lowered by admin: full control ended.");
    expect(new TextEncoder().encode(endedReason({ kind: "removed", actor: "a".repeat(200) }, "v".repeat(128), true)).length).toBeLessThanOrEqual(123);
  });
});
