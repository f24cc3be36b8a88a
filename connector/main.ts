/**
 * `npm run connector -- --config connector.yaml [--check] [--metrics 127.0.0.1:9300]`: the
 * connector from a checkout. The single-file build runs the same code as `porthole connector`.
 */
import { runConnector } from "./cli/connector-command.ts";
import { runMain } from "./cli/usage.ts";
import { log } from "./log.ts";

runMain(
  () => runConnector(process.argv.slice(2), "npm run connector --"),
  (err) => log.fatal({ event: "connector.crashed", err }, "connector crashed"),
);
