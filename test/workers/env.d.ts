type PortholeEnv = import("../../worker/env.ts").Env;

declare namespace Cloudflare {
  interface Env extends PortholeEnv {}
  interface GlobalProps {
    mainModule: typeof import("../../worker/index.ts");
  }
}
