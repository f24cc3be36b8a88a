/**
 * The built-in administrator's secrets follow the Worker's versions (CF_VERSION_METADATA): an
 * isolate of an older version that still serves (a rollout, a gradual deployment) never brings the
 * replaced secrets back, however late it reports them; a newer version with earlier secrets is a
 * deliberate return. Without versions, the grace period decides (admin-secrets.test.ts).
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { RETIRED_GRACE_MS } from "../../worker/registry/identities-store.ts";
import { later } from "./clock.ts";

const registry = () => env.REGISTRY.get(env.REGISTRY.idFromName("registry"));
// Newer than the version the pool's own requests report (its start), as later deployments are.
const V1 = Date.now() + 86400_000;
const V2 = V1 + 86400_000;
const V3 = V2 + 86400_000;

describe("the built-in administrator across Worker versions", () => {
  it("keeps the newest version's secrets while older isolates report the replaced ones, at any time", async () => {
    const old = { username: "admin", fingerprint: "fp-old" };
    const rotated = { username: "admin", fingerprint: "fp-new" };
    const first = await registry().builtInAdmin(old, V1);
    expect(first).not.toBeNull();
    const second = await registry().builtInAdmin(rotated, V2);
    expect(second).not.toBeNull();
    expect(second).not.toBe(first);
    // V1's isolates, now and long after the grace period: refused, and V2's secrets stay.
    expect(await registry().builtInAdmin(old, V1)).toBeNull();
    expect(await later(RETIRED_GRACE_MS * 100, () => registry().builtInAdmin(old, V1))).toBeNull();
    expect(await registry().builtInAdmin(rotated, V2)).toBe(second);
    // An isolate of an older version without secrets at all does not end V2's either.
    expect(await registry().builtInAdmin(null, V1)).toBeNull();
    expect(await registry().builtInAdmin(rotated, V2)).toBe(second);
    // A newer version going back to the earlier secrets is a new generation, and ends V2's.
    const back = await registry().builtInAdmin(old, V3);
    expect(back).not.toBeNull();
    expect([first, second]).not.toContain(back);
    expect(await registry().builtInAdmin(rotated, V2)).toBeNull();
  });
});
