import { describe, expect, it } from "vitest";
import { joinsAfter } from "./console-joins.ts";

const request = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: "join_request", id, link: "L1", name: "Ana", vm: "web-1", viewOnly: true, expiresAt: "2030-01-01T00:00:00Z", ...extra });

describe("viewers waiting to join, on the console page of someone in control", () => {
  it("lists each request once, in words, and drops it when it is answered", () => {
    let list = joinsAfter([], request("a"))!;
    expect(list).toEqual([{ id: "a", link: "L1", text: "Ana wants to watch web-1 (view only)", problem: null }]);
    list = joinsAfter(list, request("a"))!;
    list = joinsAfter(list, request("b", { name: "Bo", viewOnly: false }))!;
    expect(list.map((r) => r.text)).toEqual(["Ana wants to watch web-1 (view only)", "Bo wants to watch web-1 (with control)"]);
    expect(joinsAfter(list, JSON.stringify({ type: "join_answered", id: "a", outcome: "allowed" }))!.map((r) => r.id)).toEqual(["b"]);
  });

  it("ignores other notices and anything malformed, and bounds what it keeps", () => {
    expect(joinsAfter([], JSON.stringify({ type: "watching", people: [] }))).toBeNull();
    expect(joinsAfter([], "not json")).toBeNull();
    expect(joinsAfter([], JSON.stringify({ type: "join_request" }))).toBeNull();
    expect(joinsAfter([], request("a", { link: 5 }))).toEqual([]);
    const long = joinsAfter([], request("a", { name: "x".repeat(500) }))!;
    expect(long[0]!.text.length).toBeLessThan(120);
    let list: ReturnType<typeof joinsAfter> = [];
    for (let i = 0; i < 50; i++) list = joinsAfter(list!, request(`r${i}`));
    expect(list).toHaveLength(20);
  });
});
