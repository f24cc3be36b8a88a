import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { DEFAULTS, renderUnit } from "./systemd.ts";

/** `Key=value` lines of one section. */
function section(unit: string, name: string): Map<string, string[]> {
  const body = unit.split(/^\[/m).find((s) => s.startsWith(`${name}]`)) ?? "";
  const keys = new Map<string, string[]>();
  for (const line of body.split("\n").slice(1)) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  return keys;
}

describe("the connector's systemd unit", () => {
  const unit = renderUnit({ ...DEFAULTS, graceSeconds: 45 });
  const service = section(unit, "Service");
  const one = (key: string) => service.get(key)?.[0];

  it("runs the connector as an unprivileged account", () => {
    expect(one("User")).toBe("porthole");
    expect(one("Group")).toBe("porthole");
    expect(one("ExecStart")).toBe("/usr/bin/node /usr/local/lib/porthole/porthole.mjs connector --config /etc/porthole/connector.yaml --grace-period 45");
    expect(service.has("AmbientCapabilities") && one("AmbientCapabilities")).toBe("");
    expect(one("CapabilityBoundingSet")).toBe("");
  });

  it("restarts on failure but not on a config mistake (exit 2)", () => {
    expect(one("Restart")).toBe("on-failure");
    expect(one("RestartPreventExitStatus")).toBe("2");
  });

  it("stops with SIGTERM and waits longer than the connector's drain", () => {
    expect(one("KillSignal")).toBe("SIGTERM");
    expect(Number(one("TimeoutStopSec"))).toBeGreaterThan(45);
  });

  it("is hardened", () => {
    expect(one("NoNewPrivileges")).toBe("yes");
    expect(one("ProtectSystem")).toBe("strict");
    expect(one("ProtectHome")).toBe("yes");
    expect(one("PrivateTmp")).toBe("yes");
    expect(one("RestrictAddressFamilies")).toBe("AF_INET AF_INET6 AF_UNIX");
    // V8's JIT writes executable memory: this option would crash Node.
    expect(service.has("MemoryDenyWriteExecute")).toBe(false);
  });

  it("starts after the network is up and at boot", () => {
    expect(section(unit, "Unit").get("After")).toEqual(["network-online.target"]);
    expect(section(unit, "Install").get("WantedBy")).toEqual(["multi-user.target"]);
  });

  it("quotes paths with spaces and escapes systemd's % and $", () => {
    const u = renderUnit({ ...DEFAULTS, config: "/etc/port hole/50%$x.yaml" });
    expect(section(u, "Service").get("ExecStart")?.[0]).toContain('--config "/etc/port hole/50%%$$x.yaml"');
  });

  it("is what deploy/porthole-connector.service documents", () => {
    expect(readFileSync(new URL("../../deploy/porthole-connector.service", import.meta.url), "utf8")).toBe(renderUnit({ ...DEFAULTS }));
  });

  // `npm test` installs systemd (scripts/system-packages.sh), so CI always runs this; a checkout
  // without it (not root, another OS) skips it locally, but CI fails rather than skipping.
  const analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].find(existsSync);
  it.skipIf(!analyze && !process.env.CI)("passes systemd-analyze verify, and its security review rates it OK or better", () => {
    const dir = mkdtempSync(join(tmpdir(), "porthole-unit-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "porthole-connector.service");
    // Paths that exist here, as verify checks ExecStart's program.
    writeFileSync(file, renderUnit({ ...DEFAULTS, node: process.execPath }));
    // verify exits 0 even when it ignores a line it cannot parse: its complaints name file:line.
    const verify = spawnSync(analyze!, ["verify", file], { encoding: "utf8" });
    expect(verify.status).toBe(0);
    expect(verify.stderr.split("\n").filter((l) => l.includes(`${file}:`))).toEqual([]);
    const report = execFileSync(analyze!, ["security", "--offline=yes", file], { encoding: "utf8", stdio: "pipe" });
    expect(report).toMatch(/Overall exposure level for porthole-connector\.service: \d+\.\d+ (OK|SAFE)/);
  });
});
