import { describe, expect, it } from "vitest";
import { ConfigError, validateConfig } from "./config.ts";

const base = {
  edge: "https://console.example.com",
  token: "pht1.lab.x",
  hypervisors: [{ name: "lab", type: "vnc", vms: [{ id: "build-01", name: "Build box", address: "10.0.0.9:5901" }] }],
};

function problems(raw: unknown, env: NodeJS.ProcessEnv = {}): string {
  try {
    validateConfig(raw, env, "/etc/porthole");
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error("config was accepted");
}

describe("connector config", () => {
  it("accepts the contract's example and derives the connect URL", () => {
    const config = validateConfig(
      {
        ...base,
        hypervisors: [
          {
            name: "pool1",
            type: "xenserver",
            url: "https://10.0.0.5",
            username: "root",
            passwordEnv: "XS_PASSWORD",
            tls: { fingerprint: Array(32).fill("AB").join(":") },
          },
          { name: "tower", type: "cloudtower", url: "https://192.168.5.1", username: "admin", password: "s", tls: { insecure: true } },
          ...base.hypervisors,
        ],
      },
      { XS_PASSWORD: "from-env" },
      "/etc/porthole",
    );
    expect(config.connectUrl).toBe("wss://console.example.com/connect");
    expect(config.hypervisors[0]).toMatchObject({ name: "pool1", password: "from-env" });
    expect(config.hypervisors).toHaveLength(3);
  });

  it("takes edge and token from the environment", () => {
    const config = validateConfig(
      { hypervisors: base.hypervisors },
      { PORTHOLE_EDGE: "http://127.0.0.1:8787", PORTHOLE_CONNECTOR_TOKEN: "t" },
      "/",
    );
    expect(config.connectUrl).toBe("ws://127.0.0.1:8787/connect");
    expect(config.token).toBe("t");
  });

  it("names the key at fault", () => {
    expect(problems({ ...base, hypervisors: [{ ...base.hypervisors[0], vms: [{ id: "a", address: "nope" }] }] })).toMatch(
      /^hypervisors\[0\]\.vms\[0\]\.address: host:port/,
    );
    expect(problems({ ...base, hypervisors: [{ name: "x", type: "hyperv" }] })).toMatch(/^hypervisors\[0\]\.type: type must be/);
    expect(problems({ ...base, hypervisors: [{ name: "x", type: "xenserver", url: "https://h", username: "u", password: "p", tls: { fingerprint: "AB" } }] })).toMatch(
      /^hypervisors\[0\]\.tls/,
    );
    expect(problems({ ...base, extra: 1 })).toMatch(/config: Unrecognized key: "extra"|extra/);
    expect(problems({ ...base, edge: undefined })).toMatch(/^edge: missing/);
    expect(problems({ ...base, hypervisors: [...base.hypervisors, ...base.hypervisors] })).toMatch(/hypervisors\[1\]\.name: lab is used twice/);
    expect(problems({ ...base, hypervisors: [{ name: "p", type: "xenserver", url: "https://h", username: "u" }] })).toMatch(
      /hypervisors\[0\]: set exactly one of password and passwordEnv/,
    );
    expect(problems({ ...base, hypervisors: [{ name: "p", type: "xenserver", url: "https://h", username: "u", passwordEnv: "NOPE" }] })).toMatch(
      /passwordEnv: environment variable NOPE is not set/,
    );
    expect(problems({ ...base, hypervisors: [] })).toMatch(/hypervisors: list at least one hypervisor/);
    const xen = { name: "p", type: "xenserver", url: "https://h", username: "u", password: "p" };
    expect(problems({ ...base, hypervisors: [{ ...xen, consolePort: 70000 }] })).toMatch(/^hypervisors\[0\]\.consolePort: a TCP port/);
    expect(validateConfig({ ...base, hypervisors: [{ ...xen, consolePort: 8443 }] }, {}, "/").hypervisors[0]).toMatchObject({ consolePort: 8443 });
  });

  it("takes a Cloudflare Access service token from the file, a named variable or the environment", () => {
    expect(validateConfig({ ...base, access: { clientId: "id.access", clientSecret: "sec" } }, {}, "/").access).toEqual({
      clientId: "id.access",
      clientSecret: "sec",
    });
    expect(validateConfig({ ...base, access: { clientId: "id.access", clientSecretEnv: "CF_SECRET" } }, { CF_SECRET: "fromvar" }, "/").access).toEqual({
      clientId: "id.access",
      clientSecret: "fromvar",
    });
    expect(
      validateConfig(base, { PORTHOLE_ACCESS_CLIENT_ID: "envid", PORTHOLE_ACCESS_CLIENT_SECRET: "envsec" }, "/").access,
    ).toEqual({ clientId: "envid", clientSecret: "envsec" });
    expect(validateConfig(base, {}, "/").access).toBeUndefined();
    expect(problems({ ...base, access: { clientId: "id" } })).toMatch(/access: set both clientId and clientSecret/);
    expect(problems({ ...base, access: { clientId: "id", clientSecretEnv: "NOPE" } })).toMatch(/access\.clientSecretEnv: environment variable NOPE is not set/);
    expect(problems({ ...base, access: { clientId: "id", clientSecret: "a", clientSecretEnv: "B" } })).toMatch(/at most one/);
    expect(problems({ ...base, access: { clientId: "has space", clientSecret: "a" } })).toMatch(/^access\.clientId: printable ASCII/);
  });
});
