declare namespace Cloudflare {
  interface Env extends import("../../worker/env.ts").Env {}
  interface GlobalProps {
    mainModule: typeof import("../../worker/index.ts");
  }
}
