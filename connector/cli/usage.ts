import { parseArgs, type ParseArgsConfig } from "node:util";

/** A mistake on the command line or in the config: printed without a stack trace, exit status 2. */
export class UsageError extends Error {}

/** Runs a command, turning UsageError into its message and exit 2, and anything else into a logged crash. */
export function runMain(main: () => Promise<void>, crashed: (err: unknown) => void): void {
  main().catch((err) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    crashed(err);
    process.exit(1);
  });
}

/**
 * A command's arguments: a mistake is a UsageError that shows the usage; `--help` (which the
 * command declares) prints the usage and gives null.
 */
export function commandArgs<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> | null {
  let parsed: ReturnType<typeof parseArgs<T>>;
  try {
    parsed = parseArgs(config);
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${usage}`);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${usage}\n`);
    return null;
  }
  return parsed;
}
