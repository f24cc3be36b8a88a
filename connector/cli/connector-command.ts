/**
 * `porthole connector --config <file> [--check] [--metrics host:port] [--grace-period s] [--log-level l]`
 * (and `npm run connector -- …` from a checkout): runs the connector until SIGTERM/SIGINT.
 */
import { ConfigError, type ConnectorConfig, loadConfig } from "../config.ts";
import { Connector } from "../connector.ts";
import { LOG_LEVELS, log, setLogLevel } from "../log.ts";
import { serveMetrics } from "../metrics.ts";
import { createUpstream } from "../upstreams/index.ts";
import type { Upstream } from "../upstreams/upstream.ts";
import { commandArgs, UsageError } from "./usage.ts";

export function connectorUsage(prog: string): string {
  return `usage: ${prog} --config <file> [--check] [--metrics host:port] [--grace-period seconds] [--log-level level]

  --config <file>       the connector's YAML config (see README)
  --check               validate the config, reach every hypervisor, print a report, exit 0 or 1
  --metrics host:port   serve /ready and Prometheus /metrics on a loopback address
  --grace-period <s>    on SIGTERM, let open consoles run this long before closing (default 30)
  --log-level <level>   ${LOG_LEVELS.join(", ")} (default info, or PORTHOLE_LOG_LEVEL)`;
}

/**
 * Throws UsageError (exit 2) for bad arguments or an invalid config; resolves when `--check` is
 * done or, for a running connector, never (signals end the process).
 */
export async function runConnector(argv: string[], prog: string): Promise<void> {
  const usage = connectorUsage(prog);
  const parsed = commandArgs(
    {
      args: argv,
      options: {
        config: { type: "string", short: "c" },
        check: { type: "boolean", default: false },
        metrics: { type: "string" },
        "grace-period": { type: "string", default: "30" },
        "log-level": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    },
    usage,
  );
  if (!parsed) return;
  const args = parsed.values;
  try {
    if (args["log-level"] !== undefined) setLogLevel(args["log-level"], "--log-level");
    else if (process.env.PORTHOLE_LOG_LEVEL) setLogLevel(process.env.PORTHOLE_LOG_LEVEL, "PORTHOLE_LOG_LEVEL");
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (!args.config) throw new UsageError(`--config is required\n\n${usage}`);
  const grace = Number(args["grace-period"]);
  if (!Number.isFinite(grace) || grace < 0) throw new UsageError("--grace-period takes a number of seconds");

  let config: ConnectorConfig;
  let upstreams: Upstream[];
  try {
    const loaded = loadConfig(args.config);
    config = loaded;
    upstreams = loaded.hypervisors.map((h) => createUpstream(h, loaded.baseDir, log));
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new UsageError(`invalid config ${args.config}:\n${err.message.replace(/^/gm, "  ")}`);
    }
    throw err;
  }

  if (args.check) {
    let ok = true;
    for (const u of upstreams) {
      const report = await u.check();
      ok &&= report.ok;
      process.stdout.write(`${report.ok ? "ok  " : "FAIL"} ${u.name} (${u.type})\n`);
      for (const line of report.details) process.stdout.write(`       ${line}\n`);
    }
    process.exit(ok ? 0 : 1);
  }

  const connector = new Connector(config, upstreams, log);
  if (args.metrics) {
    await serveMetrics(connector, upstreams, args.metrics);
    log.info({ event: "metrics.listening", address: args.metrics }, "metrics endpoint up");
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ event: "connector.forced_exit", signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ event: "connector.stopping", signal, graceSeconds: grace }, "draining consoles");
    connector.stop(grace * 1000).then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  await connector.start();
}
