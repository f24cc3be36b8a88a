/**
 * `npm run build`: everything that ships: what the Worker serves (.build/assets, build-page.ts)
 * and the single-file command line, dist/porthole.mjs (build-cli.ts).
 */
import "./build-page.ts";
import "./build-cli.ts";
