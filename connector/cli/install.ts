/**
 * `porthole install --config <file> [--user porthole] [--metrics host:port] [--grace-period s] [--print]`
 *
 * Makes this machine run the connector as a systemd service: checks the config, creates the
 * unprivileged system account, lets it read the config (root-owned, group-readable), writes the
 * unit, and enables and starts it. `--print` only prints the unit.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, realpathSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { ConfigError, loadConfig } from "../config.ts";
import { DEFAULTS, renderUnit, UNIT_NAME } from "./systemd.ts";
import { commandArgs, UsageError } from "./usage.ts";

export const INSTALL_USAGE = `usage: porthole install --config <file> [--user name] [--metrics host:port] [--grace-period s] [--unit-dir dir] [--print]

  --config <file>       the connector's YAML config; the service reads it from this path
  --user <name>         the unprivileged account the service runs as (default ${DEFAULTS.user}; created if missing)
  --metrics host:port   have the service serve /ready and /metrics there
  --grace-period <s>    how long a stop lets open consoles run (default ${DEFAULTS.graceSeconds})
  --unit-dir <dir>      where to write ${UNIT_NAME} (default /etc/systemd/system)
  --print               print the unit and change nothing`;

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export async function runInstall(argv: string[]): Promise<void> {
  const parsed = commandArgs(
    {
      args: argv,
      options: {
        config: { type: "string", short: "c" },
        user: { type: "string", default: DEFAULTS.user },
        metrics: { type: "string" },
        "grace-period": { type: "string", default: String(DEFAULTS.graceSeconds) },
        "unit-dir": { type: "string", default: "/etc/systemd/system" },
        print: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    },
    INSTALL_USAGE,
  );
  if (!parsed) return;
  const args = parsed.values;
  if (!args.config) throw new UsageError(`--config is required\n\n${INSTALL_USAGE}`);
  if (!USER_NAME.test(args.user)) throw new UsageError(`--user: "${args.user}" is not a valid account name`);
  const grace = Number(args["grace-period"]);
  if (!Number.isInteger(grace) || grace < 0) throw new UsageError("--grace-period takes a whole number of seconds");
  if (args.metrics !== undefined && !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(args.metrics)) {
    throw new UsageError(`--metrics: "${args.metrics}" is not host:port`);
  }
  const config = resolve(args.config);
  try {
    loadConfig(config);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`invalid config ${config}:\n${err.message.replace(/^/gm, "  ")}`);
    throw err;
  }
  const unit = renderUnit({
    node: process.execPath,
    program: realpathSync(process.argv[1]!),
    config,
    user: args.user,
    graceSeconds: grace,
    ...(args.metrics ? { metrics: args.metrics } : {}),
  });
  if (args.print) {
    process.stdout.write(unit);
    return;
  }
  if (process.getuid?.() !== 0) throw new UsageError("porthole install changes the system: run it as root (or use --print)");
  if (!existsSync("/run/systemd/system")) throw new UsageError("this machine does not run systemd: use --print and your own service manager");

  const run = (cmd: string, ...a: string[]) => execFileSync(cmd, a, { stdio: "inherit" });
  const exists = (() => {
    try {
      execFileSync("id", ["-u", args.user], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  })();
  if (!exists) run("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", args.user);
  // The config holds the connector token: root owns it, only the service's group may read it.
  const gid = Number(execFileSync("id", ["-g", args.user], { encoding: "utf8" }).trim());
  chownSync(config, 0, gid);
  chmodSync(config, 0o640);
  const unitFile = `${args["unit-dir"]}/${UNIT_NAME}`;
  writeFileSync(unitFile, unit, { mode: 0o644 });
  run("systemctl", "daemon-reload");
  run("systemctl", "enable", "--now", UNIT_NAME);
  process.stdout.write(`installed ${unitFile} and started it.
  status:  systemctl status ${UNIT_NAME}
  logs:    journalctl -u ${UNIT_NAME} -f
`);
}
