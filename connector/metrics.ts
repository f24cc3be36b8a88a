/**
 * Optional loopback HTTP endpoint (`--metrics 127.0.0.1:9300`), as cloudflared has:
 * `/ready` (200 once connected to the edge) and `/metrics` (Prometheus text format 0.0.4).
 *
 * The text is written here rather than with prom-client: every value is a gauge or counter read
 * from the connector when scraped, which is a dozen lines of the format; prom-client would add a
 * dependency (and its own default metrics, histograms and registry) to the single-file build for that.
 */
import { createServer, type Server } from "node:http";
import type { Connector } from "./connector.ts";
import type { Upstream } from "./upstreams/upstream.ts";
import { VERSION } from "./version.ts";

type Labels = Record<string, string>;
interface Family {
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: { labels?: Labels; value: number }[];
}

/** Label values may hold any text: escape backslash, double quote and newline, as the format requires. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function renderMetrics(families: Family[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {});
      const text = labels.length ? `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}` : "";
      lines.push(`${f.name}${text} ${s.value}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

export function connectorMetrics(connector: Connector, upstreams: readonly Upstream[]): Family[] {
  const s = connector.stats();
  const mem = process.memoryUsage();
  return [
    { name: "porthole_build_info", help: "The connector's version; always 1.", type: "gauge", samples: [{ labels: { version: VERSION }, value: 1 }] },
    { name: "porthole_connector_connected", help: "1 while the tunnel to the edge is up.", type: "gauge", samples: [{ value: s.connected ? 1 : 0 }] },
    { name: "porthole_connector_connects_total", help: "Tunnels to the edge opened since start.", type: "counter", samples: [{ value: s.connects }] },
    { name: "porthole_connector_messages_sent_total", help: "WebSocket messages sent to the edge since start.", type: "counter", samples: [{ value: s.messagesSent }] },
    { name: "porthole_connector_streams", help: "Console streams open now.", type: "gauge", samples: [{ value: s.streams }] },
    { name: "porthole_connector_buffered_bytes", help: "Bytes queued toward the edge, not yet sent.", type: "gauge", samples: [{ value: s.bufferedBytes }] },
    {
      name: "porthole_hypervisor_up",
      help: "1 when the hypervisor answered its last inventory refresh.",
      type: "gauge",
      samples: upstreams.map((u) => ({ labels: { hypervisor: u.name, type: u.type }, value: u.inventory().reachable ? 1 : 0 })),
    },
    {
      name: "porthole_hypervisor_vms",
      help: "VMs the hypervisor announced at its last inventory refresh.",
      type: "gauge",
      samples: upstreams.map((u) => ({ labels: { hypervisor: u.name, type: u.type }, value: u.inventory().vms.length })),
    },
    { name: "process_resident_memory_bytes", help: "Resident memory size in bytes.", type: "gauge", samples: [{ value: mem.rss }] },
    { name: "nodejs_heap_used_bytes", help: "V8 heap in use, in bytes.", type: "gauge", samples: [{ value: mem.heapUsed }] },
    { name: "nodejs_external_memory_bytes", help: "Memory of Buffers and other objects outside the V8 heap, in bytes.", type: "gauge", samples: [{ value: mem.external + mem.arrayBuffers }] },
  ];
}

export function serveMetrics(connector: Connector, upstreams: readonly Upstream[], address: string): Promise<Server> {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at).replace(/^\[|\]$/g, "") || "127.0.0.1";
  const port = Number(address.slice(at + 1));
  const server = createServer((req, res) => {
    if (req.url === "/ready") {
      const { connected } = connector.stats();
      res.writeHead(connected ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ ready: connected }));
      return;
    }
    if (req.url === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(renderMetrics(connectorMetrics(connector, upstreams)));
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
