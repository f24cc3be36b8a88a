/**
 * `porthole`: the one command line, and the entry of the single-file build (dist/porthole.mjs,
 * made by `npm run build`). Subcommands: connector, install, listen (a local port for native VNC
 * viewers).
 */
import { log } from "../log.ts";
import { VERSION } from "../version.ts";
import { runConnector } from "./connector-command.ts";
import { runInstall } from "./install.ts";
import { runListen } from "./listen.ts";
import { runMain, UsageError } from "./usage.ts";

export const USAGE = `usage: porthole <command> [options]

commands:
  connector --config <file> [--check]   run the connector (or check its config and hypervisors)
  install --config <file>               run the connector as a systemd service on this machine
  listen <url> [--listen host:port]     a local port for a native VNC viewer (share link, console URL or --token)
  --version                             print the version
  --help                                this text; \`porthole <command> --help\` for a command's options`;

/** Each command takes the arguments after its name. Add `listen` here. */
const commands: Record<string, (argv: string[]) => Promise<void>> = {
  connector: (argv) => runConnector(argv, "porthole connector"),
  install: runInstall,
  listen: runListen,
};

async function main(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === "--version" || first === "-V" || first === "version") {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const command = first === undefined ? undefined : commands[first];
  if (!command || !Object.hasOwn(commands, first ?? "")) {
    throw new UsageError(first === undefined ? USAGE : `unknown command "${first}"\n\n${USAGE}`);
  }
  await command(rest);
}

runMain(
  () => main(process.argv.slice(2)),
  (err) => log.fatal({ event: "porthole.crashed", err }, "porthole crashed"),
);
