/**
 * Sites (admin): create one and get its connector token with the commands that start the connector;
 * see each connector and hypervisor's health; rotate the token; delete the site.
 */
import { useRef, useState } from "hono/jsx/dom";
import { RECORDING_POLICIES, type ConnectorHealth as Connector, type RecordingPolicy, type Site, type SiteCreated } from "../../shared/api/types.ts";
import { api, type Me, since, when } from "./app-api.ts";
import { ConfirmButton, CopyField, ErrorText, FormEnd, ScreenTitle, useAction, useInitialFocus, useLoad } from "./app-ui.tsx";

const TYPE_WORDS: Record<string, string> = { xenserver: "XenServer pool", cloudtower: "CloudTower", vnc: "VNC servers" };

/** A starting config for the connector: the hypervisors are the admin's to fill in. */
function configFor(token: string): string {
  return [
    `edge: ${location.origin}`,
    `token: "${token}"`,
    "hypervisors:",
    "  - name: lab            # your hypervisors: see README, \"Connector configuration\"",
    "    type: vnc",
    "    vms:",
    '      - { id: build-01, name: "Build box", address: 10.0.0.9:5901 }',
  ].join("\n");
}

const COMMANDS = [
  "# check the config: reaches every hypervisor, then exits 0 or 1 with a report",
  "node porthole.mjs connector --config porthole.yaml --check",
  "# run the connector (Ctrl-C stops it) …",
  "node porthole.mjs connector --config porthole.yaml",
  "# … or install it as a systemd service (as root)",
  "sudo node porthole.mjs install --config porthole.yaml",
].join("\n");

function TokenPanel({ site, token, rotated, onDone }: { site: string; token: string; rotated: boolean; onDone: () => void }) {
  return (
    <section class="card reveal" aria-labelledby="token-title">
      <h2 id="token-title">{rotated ? `New connector token for ${site}` : `Site ${site} is ready`}</h2>
      <p>
        Copy the token now: Porthole keeps only its hash and never shows it again.
        {rotated ? " Connectors still using the old token have been dropped: give them this one." : ""}
      </p>
      <CopyField label="Connector token" value={token} />
      <h3>Start a connector with it</h3>
      <p>
        On a machine inside the site's network, with Node.js 20 or newer and <code>porthole.mjs</code> (<code>npm run build</code> writes{" "}
        <code>dist/porthole.mjs</code>; see docs/connector.md), save this as <code>porthole.yaml</code> and list your hypervisors in it:
      </p>
      <CopyField label="porthole.yaml" value={configFor(token)} multiline />
      <p>Then:</p>
      <pre>
        <code>{COMMANDS}</code>
      </pre>
      <p class="hint">
        Instead of <code>edge:</code> and <code>token:</code> in the file, the environment variables <code>PORTHOLE_EDGE={location.origin}</code> and{" "}
        <code>PORTHOLE_CONNECTOR_TOKEN</code> work too.
      </p>
      <button type="button" onClick={onDone}>
        Done
      </button>
    </section>
  );
}

function NewSiteForm({ onCreated, onCancel }: { onCreated: (name: string, token: string) => void; onCancel: () => void }) {
  const [name, setName] = useState("");
  const [run, busy, error] = useAction();
  const field = useRef<HTMLInputElement>(null);
  useInitialFocus(field);
  return (
    <form
      class="card stack"
      aria-label="New site"
      onSubmit={(e: Event) => {
        e.preventDefault();
        let created: SiteCreated | undefined;
        void run(async () => {
          created = await api("POST /api/sites", { body: { name: name.trim() } });
        }).then(() => created && onCreated(created.name, created.connectorToken));
      }}
    >
      <label for="site-name">Site name</label>
      <input
        id="site-name"
        value={name}
        required
        autocomplete="off"
        aria-describedby="site-name-hint"
        onInput={(e: Event) => setName((e.target as HTMLInputElement).value)}
        ref={field}
      />
      <span class="hint" id="site-name-hint">
        1–63 lowercase letters, digits, - or _ (e.g. <code>paris-dc1</code>).
      </span>
      <FormEnd error={error} busy={busy} submit="Create" onCancel={onCancel} />
    </form>
  );
}

export function SitesScreen(_: { me: Me }) {
  const sites = useLoad(() => api("GET /api/sites"), [], 5000);
  const [creating, setCreating] = useState(false);
  const [reveal, setReveal] = useState<{ site: string; token: string; rotated: boolean } | null>(null);
  return (
    <section aria-labelledby="sites-title">
      <ScreenTitle create={{ label: "New site", open: creating, onOpen: () => setCreating(true) }}>
        <span id="sites-title">Sites</span>
      </ScreenTitle>
      {creating && (
        <NewSiteForm
          onCancel={() => setCreating(false)}
          onCreated={(site, token) => {
            setCreating(false);
            setReveal({ site, token, rotated: false });
            void sites.reload();
          }}
        />
      )}
      {reveal && <TokenPanel {...reveal} onDone={() => setReveal(null)} />}
      <ErrorText error={sites.error} />
      {sites.data?.length === 0 && <p>No sites yet. A site is one private network with one or more connectors in it: create one with New site.</p>}
      {sites.data?.map((site) => (
        <SiteCard
          key={site.name}
          site={site}
          onRotated={(token) => setReveal({ site: site.name, token, rotated: true })}
          onDeleted={() => {
            if (reveal?.site === site.name) setReveal(null);
            void sites.reload();
          }}
        />
      ))}
    </section>
  );
}

function SiteCard({ site, onRotated, onDeleted }: { site: Site; onRotated: (token: string) => void; onDeleted: () => void }) {
  const titleId = `site-${site.name}`;
  return (
    <section class="card site" aria-labelledby={titleId}>
      <div class="card-title">
        <h2 id={titleId}>
          <span class="visually-hidden">Site </span>
          {site.name}
        </h2>
        <span class={site.connectors.length ? "ok" : "bad"}>
          {site.connectors.length === 0 ? "No connector online" : `${site.connectors.length} connector${site.connectors.length === 1 ? "" : "s"} online`}
        </span>
      </div>
      {site.connectors.length === 0 && <p class="hint">Start a connector with this site's token (Rotate token gives a new one if the old is lost).</p>}
      {site.connectors.map((c) => (
        <ConnectorView key={c.id} c={c} />
      ))}
      <RecordingChoice site={site} />
      <div class="actions">
        <ConfirmButton
          label="Rotate token"
          title={`Rotate the token of ${site.name}?`}
          question={<p>Connectors using the current token are dropped at once and stay out until they are given the new one.</p>}
          confirmLabel="Rotate"
          onConfirm={async () => onRotated((await api("POST /api/sites/:site/token", { params: { site: site.name } })).connectorToken)}
        />
        <ConfirmButton
          label="Delete site"
          danger
          title={`Delete site ${site.name}?`}
          question={<p>Its share links and live consoles end and its connectors are dropped. This cannot be undone.</p>}
          confirmLabel="Delete"
          onConfirm={async () => {
            await api("DELETE /api/sites/:site", { params: { site: site.name } });
            onDeleted();
          }}
        />
      </div>
    </section>
  );
}

const POLICY_WORDS: Record<RecordingPolicy, string> = { off: "Off", all: "All consoles", links: "Consoles opened through share links" };

/** Which consoles of the site are recorded (docs/recording.md); applies to consoles opened from now on. */
function RecordingChoice({ site }: { site: Site }) {
  const [policy, setPolicy] = useState(site.recording);
  const [input, setInput] = useState(site.recordInput);
  const [run, busy, error] = useAction();
  const id = `recording-${site.name}`;
  const save = (change: { recording?: RecordingPolicy; recordInput?: boolean }) =>
    void run(async () => {
      const now = await api("PATCH /api/sites/:site", { params: { site: site.name }, body: change });
      setPolicy(now.recording);
      setInput(now.recordInput);
    });
  return (
    <div class="recording-choice">
      <label for={id}>Recording</label>{" "}
      <select id={id} value={policy} disabled={busy} onChange={(e: Event) => save({ recording: (e.target as HTMLSelectElement).value as RecordingPolicy })}>
        {RECORDING_POLICIES.map((p) => (
          <option key={p} value={p} selected={p === policy}>
            {POLICY_WORDS[p]}
          </option>
        ))}
      </select>{" "}
      <label>
        <input type="checkbox" checked={input} disabled={busy || policy === "off"} onChange={(e: Event) => save({ recordInput: (e.target as HTMLInputElement).checked })} /> Record
        input too
      </label>
      <ErrorText error={error} />
    </div>
  );
}

function ConnectorView({ c }: { c: Connector }) {
  return (
    <div class="connector">
      <p>
        <strong>{c.hostname ?? "Unnamed host"}</strong>
        {c.draining && <span class="warning"> · stopping: takes no new consoles</span>}
      </p>
      <dl class="facts">
        <dt>Version</dt>
        <dd>
          {c.version ?? "not reported"}
          {c.software && c.software !== c.version && <span class="hint"> ({c.software})</span>}
          {c.outdated && <span class="warning"> · {c.outdated}</span>}
        </dd>
        <dt>Address</dt>
        <dd>{c.address ?? "not reported"}</dd>
        <dt>Online since</dt>
        <dd>
          <time dateTime={c.connectedAt}>{when(c.connectedAt)}</time> ({since(c.connectedAt)})
        </dd>
      </dl>
      <ul class="hypervisors" aria-label={`Hypervisors of ${c.hostname ?? "this connector"}`}>
        {c.hypervisors.map((h) => (
          <li key={h.name}>
            <strong>{h.name}</strong> ({TYPE_WORDS[h.type] ?? h.type}):{" "}
            {h.reachable ? (
              <span class="ok">
                reachable, {h.vms} VM{h.vms === 1 ? "" : "s"}
                {h.omitted ? ` (${h.omitted} more not listed)` : ""}
              </span>
            ) : (
              <span class="bad">unreachable: {h.error ?? "no reason given"}</span>
            )}
          </li>
        ))}
        {c.hypervisors.length === 0 && <li>No hypervisors reported yet.</li>}
      </ul>
    </div>
  );
}
