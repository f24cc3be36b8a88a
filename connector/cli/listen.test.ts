import { describe, expect, it } from "vitest";
import { isLoopback, parseListen, parseSource } from "./listen.ts";
import { UsageError } from "./usage.ts";

describe("porthole listen's arguments", () => {
  it("reads every URL form the edge hands out", () => {
    expect(parseSource("https://edge.example/l/lab#s3cret")).toEqual({ origin: "https://edge.example", site: "lab", kind: "link", secret: "s3cret" });
    expect(parseSource("https://edge.example/l/lab/s3cret")).toMatchObject({ site: "lab", kind: "link", secret: "s3cret" });
    expect(parseSource("wss://edge.example/ws/link/lab?link=s3cret")).toEqual({ origin: "https://edge.example", site: "lab", kind: "link", secret: "s3cret" });
    expect(parseSource("http://127.0.0.1:8787/console#site=lab&ticket=t1&view=1")).toEqual({ origin: "http://127.0.0.1:8787", site: "lab", kind: "ticket", secret: "t1" });
    expect(parseSource("ws://127.0.0.1:8787/ws/console/lab?ticket=t1")).toMatchObject({ origin: "http://127.0.0.1:8787", kind: "ticket", secret: "t1" });
    expect(parseSource("https://edge.example/", { token: "pt_x", site: "lab", hypervisor: "xen", vm: "vm-1" })).toEqual({
      origin: "https://edge.example", site: "lab", kind: "token", secret: "pt_x", hypervisor: "xen", vm: "vm-1",
    });
  });

  it("refuses what is not a console URL, saying why", () => {
    expect(() => parseSource("not a url")).toThrow(UsageError);
    expect(() => parseSource("ftp://edge.example/l/lab#x")).toThrow(/is not http\(s\) or ws\(s\)/);
    expect(() => parseSource("https://edge.example/l/lab")).toThrow(/secret \(after #\) is missing/);
    expect(() => parseSource("https://edge.example/l/Bad%20Site#x")).toThrow(/is not a site name/);
    expect(() => parseSource("https://edge.example/console#site=lab")).toThrow(/no site or ticket/);
    expect(() => parseSource("https://edge.example/", { token: "pt_x", site: "lab" })).toThrow(/--token needs --site, --hypervisor and --vm/);
    expect(() => parseSource("https://edge.example/l/lab#x", { token: "pt_x", site: "lab", hypervisor: "h", vm: "v" })).toThrow(/give the edge's URL/);
  });

  it("listens on host:port and knows loopback from the rest", () => {
    expect(parseListen("127.0.0.1:5900")).toEqual({ host: "127.0.0.1", port: 5900 });
    expect(parseListen("[::1]:0")).toEqual({ host: "::1", port: 0 });
    expect(() => parseListen("5900")).toThrow(/--listen takes host:port/);
    expect(() => parseListen("127.0.0.1:70000")).toThrow(UsageError);
    expect(["127.0.0.1", "127.1.2.3", "::1", "localhost"].every(isLoopback)).toBe(true);
    expect(["0.0.0.0", "::", "192.168.1.5", "127.example"].some(isLoopback)).toBe(false);
  });
});
