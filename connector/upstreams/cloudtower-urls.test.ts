import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { directVncUrl, proxiedVncUrl, type VncInfo } from "./cloudtower-urls.ts";

/** The worked example of CloudTower's guide (its final URLs; its middle line is garbled). */
const SEED: VncInfo = {
  raw_token: "1a2bc3d4567e89f0a1b2c3d4e5f6a7b8",
  token: "MTIzNDU2Nzg5YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo=",
  vm_uuid: "00000000-0000-0000-0000-000000000000",
  cluster_ip: "192.168.5.2",
  host_ip: "192.168.5.4",
};

describe("CloudTower noVNC URLs", () => {
  it("builds the seed's direct URL byte for byte", () => {
    expect(directVncUrl(SEED)).toBe(
      "wss://192.168.5.2/websockify/?uuid=00000000-0000-0000-0000-000000000000&token=1a2bc3d4567e89f0a1b2c3d4e5f6a7b8&host=192.168.5.4",
    );
  });

  it("builds the seed's proxied URL byte for byte (…eXo%3D, not the garbled middle line)", () => {
    expect(proxiedVncUrl("192.168.5.1", SEED)).toBe(
      "wss://192.168.5.1/websockify/?token=MTIzNDU2Nzg5YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo%3D&uuid=00000000-0000-0000-0000-000000000000&host=192.168.5.4",
    );
  });

  it("percent-encodes + / = in the token", () => {
    const url = proxiedVncUrl("10.0.0.1", { ...SEED, token: "a+b/c==" });
    expect(url).toContain("token=a%2Bb%2Fc%3D%3D&");
  });

  it("round-trips any base64 token through the query string unchanged", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        const token = Buffer.from(bytes).toString("base64");
        const url = new URL(proxiedVncUrl("10.0.0.1", { ...SEED, token }));
        expect(url.searchParams.get("token")).toBe(token);
        expect(url.search).not.toMatch(/token=[^&]*[+/=]/);
      }),
    );
  });

  it("brackets IPv6 cluster and tower addresses", () => {
    expect(directVncUrl({ ...SEED, cluster_ip: "fd00::2" })).toMatch(/^wss:\/\/\[fd00::2\]\/websockify\//);
    expect(proxiedVncUrl("fd00::1", SEED)).toMatch(/^wss:\/\/\[fd00::1\]\/websockify\//);
  });
});
