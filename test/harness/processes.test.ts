/** A test run that dies (a failed global setup, a crash) must not leave its processes behind. */
import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import { waitFor } from "./processes.ts";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("child processes of the harness", () => {
  it("are killed when the process that started them dies of an error", async () => {
    const script = `
      import { start } from ${JSON.stringify(new URL("./processes.ts", import.meta.url).href)};
      const p = start("sleep", ["300"]);
      console.log(p.child.pid);
      throw new Error("global setup failed");`;
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, ["--input-type=module", "-e", script], (err, stdout) => resolve({ code: err ? (err.code as number) : 0, stdout }));
    });
    expect(code).toBe(1);
    const pid = Number(stdout.trim());
    expect(pid).toBeGreaterThan(0);
    await waitFor("sleep to be gone", async () => (alive(pid) ? undefined : true), 10_000);
  });
});

describe("the output the harness keeps and echoes", () => {
  it("carries no share-link secret of an old-style /l/<site>/<secret> URL (wrangler dev logs request paths)", async () => {
    const { start } = await import("./processes.ts");
    const secret = "s3cr3t-AbC_dEf0123456789";
    const p = start("sh", ["-c", `echo "[wrangler:info] GET /l/lab/${secret} 302 Found (3ms)"; echo "GET /l/lab/${secret}/status 410"; echo "GET /l/lab/status 200"`]);
    await p.exited;
    expect(p.output()).not.toContain(secret);
    expect(p.output()).toContain("GET /l/lab/… 302 Found");
    expect(p.output()).toContain("GET /l/lab/…/status 410");
    expect(p.output()).toContain("GET /l/lab/status 200");
  });
});
