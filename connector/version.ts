/**
 * The one version of Porthole: package.json's. The single-file build (`dist/porthole.mjs`) has it
 * written in by esbuild's `define` at build time, as it runs with no package.json beside it; a
 * checkout (`npm run connector`) reads package.json once at start.
 */
import { readFileSync } from "node:fs";

declare const PORTHOLE_VERSION: string | undefined;

function fromPackageJson(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

export const VERSION: string = typeof PORTHOLE_VERSION === "string" ? PORTHOLE_VERSION : fromPackageJson();

/** What the connector says it is in HELLO's `software` field. */
export const SOFTWARE = `porthole-connector/${VERSION}`;
