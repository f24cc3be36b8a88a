/** Every VM of every site this person may see: open its console, or share it through a link. */
import { useState } from "hono/jsx/dom";
import type { LinkCreated, SiteVm } from "../../shared/api/types.ts";
import { api, ApiFailure, type Me, when } from "./app-api.ts";
import { CopyField, Dialog, ErrorText, FormEnd, ScreenTitle, Table, useAction, useLoad, useMounted } from "./app-ui.tsx";
import { LEVEL_WORDS, RequestAccessDialog } from "./app-access.tsx";

type Asking = { site: string; hypervisor: string; vm: string; name: string } | null;

interface SiteVms {
  site: string;
  online: boolean;
  vms: SiteVm[];
  error?: string;
}

const POWER_WORDS: Record<string, string> = { running: "Running", halted: "Off", suspended: "Suspended", paused: "Paused", unknown: "Unknown" };

async function loadAll(): Promise<SiteVms[]> {
  const sites = await api("GET /api/sites");
  // One site's trouble must not hide the others' VMs: each keeps its own error.
  return Promise.all(
    sites.map(async (s): Promise<SiteVms> => {
      try {
        return { site: s.name, online: s.connectors.length > 0, vms: await api("GET /api/sites/:site/vms", { params: { site: s.name } }) };
      } catch (err) {
        return { site: s.name, online: s.connectors.length > 0, vms: [], error: (err as Error).message };
      }
    }),
  );
}

export function ConsolesScreen({ me }: { me: Me }) {
  const all = useLoad(loadAll, []);
  const [query, setQuery] = useState("");
  const [siteFilter, setSiteFilter] = useState("");
  const [sharing, setSharing] = useState<{ site: string; vm: SiteVm } | null>(null);
  const [asking, setAsking] = useState<Asking | undefined>(undefined);
  // Anyone who opens consoles may ask for more; admins have everything already.
  const mayAsk = me.role !== "admin" && me.role !== "auditor";
  const sites = all.data ?? [];
  const q = query.trim().toLowerCase();
  const rows = sites
    .filter((s) => !siteFilter || s.site === siteFilter)
    .flatMap((s) => s.vms.map((vm) => ({ site: s.site, vm })))
    .filter(({ site, vm }) => !q || [vm.name, vm.id, site, vm.hypervisor, vm.powerState].some((t) => t.toLowerCase().includes(q)));
  const troubled = sites.filter((s) => s.error || !s.online);
  const total = sites.reduce((n, s) => n + s.vms.length, 0);
  return (
    <section aria-labelledby="consoles-title">
      <ScreenTitle reloads={all}>
        <span id="consoles-title">Consoles</span>
      </ScreenTitle>
      {mayAsk && (
        <p class="actions">
          <button type="button" onClick={() => setAsking(null)}>
            Request access
          </button>
          <span class="hint"> to a VM not listed here.</span>
        </p>
      )}
      <form class="filters" role="search" aria-label="Filter VMs" onSubmit={(e: Event) => e.preventDefault()}>
        <div class="field">
          <label for="vm-search">Search</label>
          <input id="vm-search" type="search" value={query} placeholder="name, id, site, hypervisor, state" onInput={(e: Event) => setQuery((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="vm-site">Site</label>
          <select id="vm-site" value={siteFilter} onChange={(e: Event) => setSiteFilter((e.target as HTMLSelectElement).value)}>
            <option value="">All sites</option>
            {sites.map((s) => (
              <option key={s.site} value={s.site}>
                {s.site}
              </option>
            ))}
          </select>
        </div>
      </form>
      <ErrorText error={all.error} />
      {troubled.map((s) => (
        <p key={s.site} class="warning">
          {s.error ? `Site ${s.site}: ${s.error}` : `Site ${s.site} has no connector online: its VMs are not listed until one connects.`}
        </p>
      ))}
      {all.data && (
        <p role="status" class="hint">
          {rows.length === total ? `${total} VM${total === 1 ? "" : "s"}` : `${rows.length} of ${total} VMs`}
          {sites.length === 0 ? (me.role === "admin" ? " — no sites yet: create one under Sites." : " — no sites yet.") : ""}
        </p>
      )}
      {rows.length > 0 && (
        <Table columns={["VM", "Site", "Hypervisor", "Power state", "Access"]}>
          {rows.map(({ site, vm }) => (
            <VmRow
              key={`${site}/${vm.hypervisor}/${vm.id}`}
              me={me}
              site={site}
              vm={vm}
              onShare={() => setSharing({ site, vm })}
              onAsk={mayAsk && vm.level !== "share" ? () => setAsking({ site, hypervisor: vm.hypervisor, vm: vm.id, name: vm.name || vm.id }) : undefined}
            />
          ))}
        </Table>
      )}
      {sharing && <ShareDialog site={sharing.site} vm={sharing.vm} onClose={() => setSharing(null)} />}
      {asking !== undefined && <RequestAccessDialog target={asking} onClose={() => setAsking(undefined)} />}
    </section>
  );
}

function VmRow({ me, site, vm, onShare, onAsk }: { me: Me; site: string; vm: SiteVm; onShare: () => void; onAsk: (() => void) | undefined }) {
  const [run, busy, error] = useAction();
  const [fallback, setFallback] = useState<string | null>(null);
  const mounted = useMounted();
  const open = () => {
    // Open the window inside the click (popup blockers allow that), then point it at the console.
    const win = window.open("", "_blank");
    if (win) win.opener = null;
    void run(async () => {
      try {
        const c = await api("POST /api/consoles", { body: { site, hypervisor: vm.hypervisor, vm: vm.id } });
        if (win && !win.closed) win.location.href = c.pageUrl;
        else if (mounted.current) setFallback(c.pageUrl);
      } catch (err) {
        win?.close();
        throw err;
      }
    });
  };
  return (
    <tr>
      <th scope="row">
        {vm.name || vm.id}
        {vm.name && vm.name !== vm.id && <div class="hint">{vm.id}</div>}
      </th>
      <td data-label="Site">{site}</td>
      <td data-label="Hypervisor">{vm.hypervisor}</td>
      <td data-label="Power state">
        <span class={`power power-${vm.powerState}`}>{POWER_WORDS[vm.powerState] ?? vm.powerState}</span>
      </td>
      <td data-label="Access">
        {vm.level ? LEVEL_WORDS[vm.level] : ""}
        {vm.until && (
          <div class="hint">
            until <time dateTime={vm.until}>{when(vm.until)}</time>
          </div>
        )}
      </td>
      <td class="actions">
        <button type="button" class="primary" onClick={open} disabled={busy}>
          Open console
        </button>
        {(vm.level ? vm.level === "share" : me.role !== "viewer") && (
          <button type="button" onClick={onShare}>
            Share
          </button>
        )}
        {onAsk && (
          <button type="button" onClick={onAsk}>
            Request access
          </button>
        )}
        <ErrorText error={error} />
        {fallback && (
          <p>
            Your browser blocked the new tab:{" "}
            <a href={fallback} target="_blank" rel="noopener">
              open the console of {vm.name || vm.id}
            </a>{" "}
            within a minute.
          </p>
        )}
      </td>
    </tr>
  );
}

const EXPIRY_CHOICES = [
  { seconds: 900, label: "15 minutes" },
  { seconds: 3600, label: "1 hour" },
  { seconds: 8 * 3600, label: "8 hours" },
  { seconds: 86400, label: "1 day" },
];

/** The edge's longest link, learned from its refusal ("ttlSeconds: at most N …"); its default (1 day) until then. */
let knownMaxSeconds = 86400;
let maxFromEdge = false;

function ShareDialog({ site, vm, onClose }: { site: string; vm: SiteVm; onClose: () => void }) {
  const [choice, setChoice] = useState("900");
  const [customMinutes, setCustomMinutes] = useState("30");
  const [viewOnly, setViewOnly] = useState(true);
  const [pin, setPin] = useState(false);
  const [approval, setApproval] = useState(false);
  const [oneTime, setOneTime] = useState(false);
  const [note, setNote] = useState("");
  const [startIn, setStartIn] = useState("");
  const [viewers, setViewers] = useState("");
  const [created, setCreated] = useState<LinkCreated | null>(null);
  const [run, busy, error, setError] = useAction();
  const mounted = useMounted();
  const create = (e: Event) => {
    e.preventDefault();
    let ttlSeconds = Number(choice);
    if (choice === "custom") {
      const minutes = Number(customMinutes);
      if (!Number.isInteger(minutes) || minutes < 1) {
        setError("Give the custom expiry as a whole number of minutes, 1 or more.");
        return;
      }
      ttlSeconds = minutes * 60;
    }
    const startMinutes = startIn.trim() === "" ? 0 : Number(startIn);
    const maxViewers = viewers.trim() === "" ? undefined : Number(viewers);
    if (!Number.isInteger(startMinutes) || startMinutes < 0) {
      setError("Give the start as a whole number of minutes from now, or leave it empty.");
      return;
    }
    const extra = {
      ...(pin ? { pin: true } : {}),
      ...(approval ? { approval: true } : {}),
      ...(oneTime ? { maxUses: 1 } : {}),
      ...(note.trim() ? { note: note.trim() } : {}),
      ...(startMinutes > 0 ? { startsAt: new Date(Date.now() + startMinutes * 60_000).toISOString() } : {}),
      ...(maxViewers !== undefined ? { maxViewers } : {}),
    };
    void run(async () => {
      try {
        const link = await api("POST /api/links", { body: { site, hypervisor: vm.hypervisor, vm: vm.id, ttlSeconds, viewOnly, ...extra } });
        if (mounted.current) setCreated(link);
      } catch (err) {
        const max = err instanceof ApiFailure ? /at most (\d+)/.exec(err.message) : null;
        if (max) {
          knownMaxSeconds = Number(max[1]);
          maxFromEdge = true;
          throw new Error(`This edge allows share links of at most ${Math.floor(knownMaxSeconds / 60)} minutes: choose a shorter expiry.`);
        }
        throw err;
      }
    });
  };
  const name = vm.name || vm.id;
  return (
    <Dialog title={`Share ${name}`} onClose={onClose}>
      {!created ? (
        <form onSubmit={create} class="stack">
          <p class="hint">
            Anyone with the link can {viewOnly ? "watch" : "use"} the console of {name} ({site} / {vm.hypervisor}) until it ends or you revoke it.
          </p>
          <label for="share-expiry">Expires in</label>
          <select id="share-expiry" value={choice} onChange={(e: Event) => {
              setChoice((e.target as HTMLSelectElement).value);
              setError(null);
            }}>
            {EXPIRY_CHOICES.filter((c) => c.seconds <= knownMaxSeconds).map((c) => (
              <option key={c.seconds} value={String(c.seconds)}>
                {c.label}
              </option>
            ))}
            <option value="custom">Custom…</option>
          </select>
          {choice === "custom" && (
            <div class="stack">
              <label for="share-minutes">Custom expiry in minutes</label>
              <input
                id="share-minutes"
                type="number"
                min={1}
                step={1}
                value={customMinutes}
                aria-describedby="share-minutes-hint"
                onInput={(e: Event) => {
                  setCustomMinutes((e.target as HTMLInputElement).value);
                  setError(null);
                }}
              />
              <span class="hint" id="share-minutes-hint">
                {maxFromEdge
                  ? `This edge allows at most ${Math.floor(knownMaxSeconds / 60)} minutes.`
                  : "Up to 1440 minutes (1 day) unless this edge is set otherwise; it says so if it is."}
              </span>
            </div>
          )}
          <label class="check">
            <input type="checkbox" checked={viewOnly} onChange={(e: Event) => setViewOnly((e.target as HTMLInputElement).checked)} />
            View only
          </label>
          <label class="check">
            <input type="checkbox" checked={pin} onChange={(e: Event) => setPin((e.target as HTMLInputElement).checked)} />
            Require a PIN
          </label>
          <label class="check">
            <input type="checkbox" checked={approval} onChange={(e: Event) => setApproval((e.target as HTMLInputElement).checked)} />
            Ask before each viewer joins
          </label>
          <label class="check">
            <input type="checkbox" checked={oneTime} onChange={(e: Event) => setOneTime((e.target as HTMLInputElement).checked)} />
            One-time link
          </label>
          <label for="share-start">Starts in minutes (empty: now)</label>
          <input id="share-start" type="number" min={0} step={1} value={startIn} onInput={(e: Event) => setStartIn((e.target as HTMLInputElement).value)} />
          <label for="share-viewers">Viewers at once (empty: the edge's most)</label>
          <input id="share-viewers" type="number" min={1} step={1} value={viewers} onInput={(e: Event) => setViewers((e.target as HTMLInputElement).value)} />
          <label for="share-note">Note</label>
          <input id="share-note" maxLength={200} value={note} onInput={(e: Event) => setNote((e.target as HTMLInputElement).value)} />
          <FormEnd error={error} busy={busy} submit="Create link" onCancel={onClose} />
        </form>
      ) : (
        <div class="stack">
          <CopyField label="Share link" value={created.url} />
          {created.pin && (
            <div class="stack">
              <label for="share-pin">Link PIN</label>
              <input id="share-pin" readOnly value={created.pin} class="mono" aria-describedby="share-pin-hint" />
              <span class="hint" id="share-pin-hint">
                Give the PIN through another channel (a call, a chat), not with the link. 10 wrong PINs lock the link for good.
              </span>
            </div>
          )}
          <p>
            {created.viewOnly ? "View only" : "Full control"}. Ends <time dateTime={created.expiresAt}>{when(created.expiresAt)}</time>. Copy it now: it is not shown again.
          </p>
          <div class="actions">
            <button type="button" class="primary" onClick={onClose}>
              Done
            </button>
          </div>
        </div>
      )}
    </Dialog>
  );
}
