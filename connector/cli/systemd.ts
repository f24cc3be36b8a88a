/**
 * The systemd unit that runs the connector as a service. `porthole install` writes it; the same
 * text, for the documented paths, is deploy/porthole-connector.service (a test keeps them equal).
 */

export interface UnitOptions {
  /** Absolute path of the Node binary (>= 20). */
  node: string;
  /** Absolute path of porthole.mjs (or connector/cli/porthole.ts in a checkout). */
  program: string;
  /** Absolute path of the connector's YAML config. */
  config: string;
  /** The unprivileged account the service runs as. */
  user: string;
  /** --grace-period: how long SIGTERM lets open consoles run. */
  graceSeconds: number;
  /** --metrics host:port, if any. */
  metrics?: string;
}

export const UNIT_NAME = "porthole-connector.service";
export const DEFAULTS = {
  node: "/usr/bin/node",
  program: "/usr/local/lib/porthole/porthole.mjs",
  config: "/etc/porthole/connector.yaml",
  user: "porthole",
  graceSeconds: 30,
} as const;

/** systemd splits ExecStart on spaces and expands % and $: quote what needs it. */
function quote(arg: string): string {
  const escaped = arg.replace(/%/g, "%%").replace(/\$/g, "$$$$");
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? escaped : `"${escaped.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

export function renderUnit(o: UnitOptions): string {
  const exec = [o.node, o.program, "connector", "--config", o.config, "--grace-period", String(o.graceSeconds)];
  if (o.metrics) exec.push("--metrics", o.metrics);
  // systemd waits TimeoutStopSec after SIGTERM before SIGKILL: longer than the drain, so open
  // consoles get their whole grace period and the connector its clean exit.
  const stopTimeout = o.graceSeconds + 15;
  return `# Porthole connector: dials out to the edge and carries this site's VM consoles.
# Written by \`porthole install\`; Porthole's docs/connector.md explains each part.
[Unit]
Description=Porthole connector
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=${o.user}
Group=${o.user}
ExecStart=${exec.map(quote).join(" ")}
# Secrets named by passwordEnv (and PORTHOLE_CONNECTOR_TOKEN, PORTHOLE_LOG_LEVEL) may live here.
EnvironmentFile=-/etc/porthole/connector.env
Restart=on-failure
RestartSec=5
# Exit status 2 is a config or command-line mistake: restarting will not fix it.
RestartPreventExitStatus=2
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=${stopTimeout}

# Hardening: the connector only reads its config and opens network connections.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
CapabilityBoundingSet=
AmbientCapabilities=
SystemCallArchitectures=native
UMask=0077
# Not MemoryDenyWriteExecute: V8's JIT needs memory that is writable and executable.

[Install]
WantedBy=multi-user.target
`;
}
