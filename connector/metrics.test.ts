import { describe, expect, it } from "vitest";
import { renderMetrics } from "./metrics.ts";

describe("Prometheus text", () => {
  it("gives every family HELP and TYPE before its samples, and escapes label values", () => {
    const text = renderMetrics([
      { name: "a_total", help: "As.", type: "counter", samples: [{ value: 3 }] },
      { name: "b", help: "Bs.", type: "gauge", samples: [{ labels: { hypervisor: 'x"y\\z\nw', type: "vnc" }, value: 1 }] },
      { name: "c", help: "No samples yet.", type: "gauge", samples: [] },
    ]);
    expect(text).toBe(
      [
        "# HELP a_total As.",
        "# TYPE a_total counter",
        "a_total 3",
        "# HELP b Bs.",
        "# TYPE b gauge",
        'b{hypervisor="x\\"y\\\\z\\nw",type="vnc"} 1',
        "# HELP c No samples yet.",
        "# TYPE c gauge",
        "",
      ].join("\n"),
    );
  });
});
