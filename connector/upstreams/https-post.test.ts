import { Agent, createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeCertificates } from "../../test/simulators/xapi/certs.ts";
import { httpsPost } from "./https-post.ts";

let server: Server;
let base: URL;
const agent = new Agent({ keepAlive: false });

beforeAll(async () => {
  const { hosts } = await makeCertificates(["127.0.0.1"], "self-signed");
  server = createServer({ cert: hosts[0]!.certPem, key: hosts[0]!.keyPem }, (req, res) => {
    if (req.url === "/huge") {
      // An API that never stops talking.
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = () => {
        while (res.write(chunk)) {}
      };
      res.on("drain", pump);
      pump();
      return;
    }
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => res.end(JSON.stringify({ got: body, type: req.headers["content-type"] })));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe("the hypervisor APIs' HTTPS client", () => {
  it("posts the body with its headers and returns the reply", async () => {
    const reply = await httpsPost({ base, path: "/", body: "hello", headers: { "Content-Type": "text/xml" }, trust: { mode: "insecure" }, agent, what: "Test API" });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toEqual({ got: "hello", type: "text/xml" });
  });

  it("stops reading a reply past its cap, and says which API sent it", async () => {
    const call = httpsPost({ base, path: "/huge", body: "", headers: {}, trust: { mode: "insecure" }, agent, what: "Test API", maxReplyBytes: 1024 * 1024 });
    await expect(call).rejects.toThrow(/Test API reply larger than 1048576 bytes/);
  });
});
