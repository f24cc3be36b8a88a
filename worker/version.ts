/**
 * The edge's version: package.json's, written into the bundle when wrangler builds it (wrangler
 * and the test pool both bundle JSON imports; nothing is read at run time).
 */
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
