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
