type PortholeEnv = import("../../worker/env.ts").Env;

declare namespace Cloudflare {
  interface Env extends PortholeEnv {
    /** The private key of the test Access team (see vitest.workers.config.ts). */
    TEST_ACCESS_PRIVATE_JWK: string;
  }
  interface GlobalProps {
    mainModule: typeof import("../../worker/index.ts");
  }
}
