/** Greetings are kept per VM, only real RFB versions, and never more than the bound. */
import { describe, expect, it } from "vitest";
import { GreetingCache } from "./greeting-cache.ts";

describe("GreetingCache", () => {
  it("keeps a VM's RFB greeting, and nothing that is not one", () => {
    const cache = new GreetingCache();
    cache.set("lab", "a", Buffer.from("RFB 003.008\n"));
    cache.set("lab", "b", Buffer.from("HTTP/1.1 200"));
    expect(cache.get("lab", "a")?.toString()).toBe("RFB 003.008\n");
    expect(cache.get("lab", "b")).toBeUndefined();
    expect(cache.get("other", "a")).toBeUndefined();
  });

  it("drops the least recently used entry beyond its bound", () => {
    const cache = new GreetingCache(2);
    cache.set("lab", "a", Buffer.from("RFB 003.008\n"));
    cache.set("lab", "b", Buffer.from("RFB 003.003\n"));
    cache.get("lab", "a");
    cache.set("lab", "c", Buffer.from("RFB 003.007\n"));
    expect(cache.size).toBe(2);
    expect(cache.get("lab", "b")).toBeUndefined();
    expect(cache.get("lab", "a")).toBeDefined();
  });
});
