/**
 * `npm run connector -- --config connector.yaml [--check] [--metrics 127.0.0.1:9300]`
 */
import { parseArgs } from "node:util";
import { ConfigError, type ConnectorConfig, loadConfig } from "./config.ts";
import { Connector } from "./connector.ts";
import { log } from "./log.ts";
import { serveMetrics } from "./metrics.ts";
import { createUpstream } from "./upstreams/index.ts";
import type { Upstream } from "./upstreams/upstream.ts";

const USAGE = `usage: npm run connector -- --config <file> [--check] [--metrics host:port] [--grace-period seconds]

  --config <file>       the connector's YAML config (see README)
  --check               validate the config, reach every hypervisor, print a report, exit 0 or 1
  --metrics host:port   serve /ready and /metrics on a loopback address
  --grace-period <s>    on SIGTERM, let open consoles run this long before closing (default 30)`;

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: "string", short: "c" },
        check: { type: "boolean", default: false },
        metrics: { type: "string" },
        "grace-period": { type: "string", default: "30" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (err) {
    fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!args.config) fail(`--config is required\n\n${USAGE}`);
  const grace = Number(args["grace-period"]);
  if (!Number.isFinite(grace) || grace < 0) fail("--grace-period takes a number of seconds");

  let config: ConnectorConfig;
  let upstreams: Upstream[];
  try {
    const loaded = loadConfig(args.config);
    config = loaded;
    upstreams = loaded.hypervisors.map((h) => createUpstream(h, loaded.baseDir, log));
  } catch (err) {
    if (err instanceof ConfigError) {
      fail(`invalid config ${args.config}:\n${err.message.replace(/^/gm, "  ")}`);
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
    await serveMetrics(connector, args.metrics);
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

main().catch((err) => {
  log.fatal({ event: "connector.crashed", err }, "connector crashed");
  process.exit(1);
});
