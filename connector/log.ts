/**
 * One JSON line per event on stdout. Every line carries `event` (a stable dotted name) so the
 * lines can be filtered; secrets (tokens, passwords, session refs) are never logged.
 */
import { pino } from "pino";

/** pino's levels, most to least verbose is the reverse; `silent` logs nothing. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

// Created at "info": the level asked for (flag or PORTHOLE_LOG_LEVEL) is validated and applied by
// the command line with `setLogLevel`, so a typo is a clear error rather than pino's stack trace.
export const log = pino({
  base: { app: "porthole-connector" },
  level: "info",
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
  redact: {
    paths: ["token", "password", "*.token", "*.password", "headers.authorization", "clientSecret", "*.clientSecret", 'headers["cf-access-client-secret"]'],
    censor: "[redacted]",
  },
});

/** Applies a level; throws an Error naming `source` and the valid levels when it is not one. */
export function setLogLevel(value: string, source: string): void {
  if (!isLogLevel(value)) {
    throw new Error(`${source}: unknown log level "${value}"; use one of ${LOG_LEVELS.join(", ")}`);
  }
  log.level = value;
}

export type Log = typeof log;
