import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../env.ts";
import { notify } from "./notify.ts";

afterEach(() => vi.unstubAllGlobals());

function run(env: Partial<Env>, fetchImpl: typeof fetch): Promise<unknown>[] {
  vi.stubGlobal("fetch", fetchImpl);
  const waited: Promise<unknown>[] = [];
  notify(env as Env, (p) => waited.push(p), "mia asks for control on web-1");
  return waited;
}

describe("the access webhook", () => {
  it("does nothing without NOTIFY_WEBHOOK_URL", () => {
    const f = vi.fn();
    expect(run({}, f)).toHaveLength(0);
    expect(f).not.toHaveBeenCalled();
  });

  it("POSTs a Slack-compatible {text} with a timeout, through waitUntil", async () => {
    const f = vi.fn(async () => new Response("ok"));
    const waited = run({ NOTIFY_WEBHOOK_URL: "https://hooks.example/x" }, f);
    await Promise.all(waited);
    const [url, init] = f.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("https://hooks.example/x");
    expect(init.method).toBe("POST");
    expect(JSON.parse(init.body as string)).toEqual({ text: "mia asks for control on web-1" });
    expect(init.signal).toBeInstanceOf(AbortSignal);
  });

  it("escapes what Slack would read as mentions or links", async () => {
    const f = vi.fn(async () => new Response("ok"));
    vi.stubGlobal("fetch", f);
    const waited: Promise<unknown>[] = [];
    notify({ NOTIFY_WEBHOOK_URL: "https://hooks.example/x" } as Env, (p) => waited.push(p), "please <!channel> & <http://evil|click>");
    await Promise.all(waited);
    const init = (f.mock.calls[0] as unknown as [string, RequestInit])[1];
    expect(JSON.parse(init.body as string).text).toBe("please &lt;!channel&gt; &amp; &lt;http://evil|click&gt;");
  });

  it("logs a failure (a refusal or no answer), never throws, never retries", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const refused = vi.fn(async () => new Response("no", { status: 500 }));
    await Promise.all(run({ NOTIFY_WEBHOOK_URL: "https://hooks.example/x" }, refused));
    const down = vi.fn(async () => {
      throw new TypeError("fetch failed");
    });
    await Promise.all(run({ NOTIFY_WEBHOOK_URL: "https://hooks.example/x" }, down));
    expect(refused).toHaveBeenCalledTimes(1);
    expect(down).toHaveBeenCalledTimes(1);
    expect(errors.mock.calls.map((c) => String(c[0]))).toEqual([expect.stringContaining('"status":500'), expect.stringContaining("fetch failed")]);
    errors.mockRestore();
  });
});
