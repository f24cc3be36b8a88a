/**
 * Optional loopback HTTP endpoint (`--metrics 127.0.0.1:9300`), as cloudflared has:
 * `/ready` (200 once connected to the edge) and `/metrics` (Prometheus text).
 */
import { createServer, type Server } from "node:http";
import type { Connector } from "./connector.ts";

export function serveMetrics(connector: Connector, address: string): Promise<Server> {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at).replace(/^\[|\]$/g, "") || "127.0.0.1";
  const port = Number(address.slice(at + 1));
  const server = createServer((req, res) => {
    const s = connector.stats();
    if (req.url === "/ready") {
      res.writeHead(s.connected ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ ready: s.connected }));
      return;
    }
    if (req.url === "/metrics") {
      const mem = process.memoryUsage();
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end(
        [
          `porthole_connector_connected ${s.connected ? 1 : 0}`,
          `porthole_connector_connects_total ${s.connects}`,
          `porthole_connector_streams ${s.streams}`,
          `porthole_connector_buffered_bytes ${s.bufferedBytes}`,
          `process_resident_memory_bytes ${mem.rss}`,
          `nodejs_heap_used_bytes ${mem.heapUsed}`,
          `nodejs_external_memory_bytes ${mem.external + mem.arrayBuffers}`,
          "",
        ].join("\n"),
      );
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
