import { describe, expect, it } from "vitest";
import { watchingFrom } from "./console-watching.ts";

describe("the Watching now notice", () => {
  it("reads who is on the console and who joined or left", () => {
    const people = [
      { name: "admin", viewOnly: false, since: "2026-12-07T06:00:00Z" },
      { name: "link: for Ana", viewOnly: true, since: "2026-12-07T06:01:00Z" },
    ];
    expect(watchingFrom(JSON.stringify({ type: "watching", people, more: 0, joined: "link: for Ana" }))).toEqual({
      people: [
        { name: "admin", viewOnly: false },
        { name: "link: for Ana", viewOnly: true },
      ],
      more: 0,
      change: "link: for Ana joined.",
    });
    expect(watchingFrom(JSON.stringify({ type: "watching", people: [], left: "bo" }))?.change).toBe("bo left.");
  });

  it("ignores other notices and garbage, and bounds what it keeps", () => {
    expect(watchingFrom(JSON.stringify({ type: "recorded", input: true }))).toBeNull();
    expect(watchingFrom("not json")).toBeNull();
    expect(watchingFrom(JSON.stringify({ type: "watching", people: "x" }))).toBeNull();
    const many = Array.from({ length: 500 }, () => ({ name: "x".repeat(1000) }));
    const w = watchingFrom(JSON.stringify({ type: "watching", people: many }))!;
    expect(w.people).toHaveLength(50);
    expect(w.people[0]!.name).toHaveLength(200);
  });
});
