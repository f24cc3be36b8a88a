/**
 * One JSON line per event on stdout. Every line carries `event` (a stable dotted name) so the
 * lines can be filtered; secrets (tokens, passwords, session refs) are never logged.
 */
import { pino } from "pino";

export const log = pino({
  base: { app: "porthole-connector" },
  level: process.env.PORTHOLE_LOG_LEVEL ?? "info",
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
  redact: {
    paths: ["token", "password", "*.token", "*.password", "headers.authorization", "clientSecret", "*.clientSecret", 'headers["cf-access-client-secret"]'],
    censor: "[redacted]",
  },
});

export type Log = typeof log;
