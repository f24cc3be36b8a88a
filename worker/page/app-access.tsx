/**
 * Least privilege in the app (issue 19): per user **Access** (their grants; **Grant access**),
 * **Groups** (members and the group's grants) and **Access requests** (Approve, Deny). The edge
 * decides everything (worker/access/decide.ts); these screens only ask it.
 */
import { useState } from "hono/jsx/dom";
import type { AccessLevel, AccessRequest, Grant, NewGrantBody, SiteVm } from "../../shared/api/types.ts";
import { api, when } from "./app-api.ts";
import { ConfirmButton, Dialog, ErrorText, FormEnd, ScreenTitle, Table, useAction, useLoad, useMounted } from "./app-ui.tsx";

export const LEVEL_WORDS: Record<AccessLevel, string> = { view: "View only", control: "Full control", share: "Full control and share links" };

function scopeWords(g: Grant): string {
  const where = g.vm ? `VM ${g.vm} on ${g.hypervisor}` : g.vmPattern ? `VMs named ${g.vmPattern}${g.hypervisor ? ` on ${g.hypervisor}` : ""}` : g.hypervisor ? `hypervisor ${g.hypervisor}` : "the whole site";
  return `${g.site}: ${where}`;
}

function windowWords(g: Grant): string {
  if (g.from && Date.parse(g.from) > Date.now()) return `from ${when(g.from)}${g.until ? ` until ${when(g.until)}` : ""}`;
  return g.until ? `until ${when(g.until)}` : "no end";
}

/** A list of grants with Remove, and the Grant access form, for one user or one group. */
export function GrantsPanel({ target }: { target: { user: string } | { group: string } }) {
  const query = "user" in target ? { user: target.user } : { group: target.group };
  const grants = useLoad(() => api("GET /api/grants", { query }), [JSON.stringify(query)]);
  const [adding, setAdding] = useState(false);
  return (
    <div class="stack">
      <ErrorText error={grants.error} />
      {grants.data && grants.data.length === 0 && <p class="hint">No grants: {"user" in target ? "only what the role gives" : "the group gives nothing yet"}.</p>}
      {grants.data && grants.data.length > 0 && (
        <ul class="grants">
          {grants.data.map((g) => (
            <li key={g.id}>
              {LEVEL_WORDS[g.level]} · {scopeWords(g)} · {windowWords(g)}
              {g.group && "user" in target ? ` (group ${g.group})` : ""}{" "}
              <ConfirmButton
                label="Remove"
                title="Remove this grant?"
                question={<p>Consoles and share links that only it allowed end at once.</p>}
                confirmLabel="Remove grant"
                danger
                onConfirm={async () => {
                  await api("DELETE /api/grants/:id", { params: { id: g.id } });
                  await grants.reload();
                }}
              />
            </li>
          ))}
        </ul>
      )}
      {adding ? (
        <GrantForm
          target={target}
          onCancel={() => setAdding(false)}
          onDone={() => {
            setAdding(false);
            void grants.reload();
          }}
        />
      ) : (
        <div class="actions">
          <button type="button" class="primary" onClick={() => setAdding(true)}>
            Grant access
          </button>
        </div>
      )}
    </div>
  );
}

/**
 * Site, VM, Level, Until. VM: empty for the whole site, a name with `*` or `?` for a pattern
 * (`web-*`), else one VM by name or id (looked up in the site's list).
 */
function GrantForm({ target, onDone, onCancel }: { target: { user: string } | { group: string }; onDone: () => void; onCancel: () => void }) {
  const sites = useLoad(() => api("GET /api/sites"), []);
  const [run, busy, error] = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.target as HTMLFormElement);
    const site = String(data.get("site") ?? "");
    const vmText = String(data.get("vm") ?? "").trim();
    const level = String(data.get("level")) as AccessLevel;
    const untilText = String(data.get("until") ?? "");
    void run(async () => {
      const body: NewGrantBody = { ...target, site, level };
      if (vmText && /[*?]/.test(vmText)) body.vmPattern = vmText;
      else if (vmText) {
        const vms: SiteVm[] = await api("GET /api/sites/:site/vms", { params: { site } });
        const found = vms.find((v) => v.name === vmText || v.id === vmText);
        if (!found) throw new Error(`Site ${site} has no VM named ${vmText} right now: give its exact name or id, or a pattern such as web-*.`);
        body.hypervisor = found.hypervisor;
        body.vm = found.id;
      }
      if (untilText) body.until = new Date(untilText).toISOString();
      await api("POST /api/grants", { body });
    }).then((ok) => ok && onDone());
  };
  return (
    <form class="card stack" aria-label="Grant access" onSubmit={submit}>
      <label for="grant-site">Site</label>
      <select id="grant-site" name="site" required>
        {(sites.data ?? []).map((s) => (
          <option key={s.name} value={s.name}>
            {s.name}
          </option>
        ))}
      </select>
      <label for="grant-vm">VM</label>
      <input id="grant-vm" name="vm" autocomplete="off" aria-describedby="grant-vm-hint" />
      <span class="hint" id="grant-vm-hint">
        Empty: the whole site. A name or id: that VM. With * or ?: every VM whose name matches (web-*).
      </span>
      <label for="grant-level">Level</label>
      <select id="grant-level" name="level">
        {(Object.keys(LEVEL_WORDS) as AccessLevel[]).map((l) => (
          <option key={l} value={l}>
            {LEVEL_WORDS[l]}
          </option>
        ))}
      </select>
      <label for="grant-until">Until</label>
      <input id="grant-until" name="until" type="datetime-local" step={1} aria-describedby="grant-until-hint" />
      <span class="hint" id="grant-until-hint">
        Empty: until removed. Your local time.
      </span>
      <ErrorText error={sites.error} />
      <FormEnd error={error} busy={busy} submit="Grant" onCancel={onCancel} />
    </form>
  );
}

/** The Access button of a user's row: their grants in a dialog. */
export function AccessButton({ username }: { username: string }) {
  const [open, setOpen] = useState(false);
  return (
    <span class="confirm">
      <button type="button" onClick={() => setOpen(true)}>
        Access
      </button>
      {open && (
        <Dialog title={`Access of ${username}`} onClose={() => setOpen(false)}>
          <GrantsPanel target={{ user: username }} />
          <div class="actions">
            <button type="button" onClick={() => setOpen(false)}>
              Close
            </button>
          </div>
        </Dialog>
      )}
    </span>
  );
}

export function GroupsScreen() {
  const groups = useLoad(() => api("GET /api/groups"), []);
  const [creating, setCreating] = useState(false);
  const [run, busy, error] = useAction();
  return (
    <section aria-labelledby="groups-title">
      <ScreenTitle create={{ label: "New group", open: creating, onOpen: () => setCreating(true) }} reloads={groups}>
        <span id="groups-title">Groups</span>
      </ScreenTitle>
      {creating && (
        <form
          class="card stack"
          aria-label="New group"
          onSubmit={(e: Event) => {
            e.preventDefault();
            const name = String(new FormData(e.target as HTMLFormElement).get("name") ?? "").trim();
            void run(async () => void (await api("POST /api/groups", { body: { name } }))).then((ok) => {
              if (!ok) return;
              setCreating(false);
              void groups.reload();
            });
          }}
        >
          <label for="group-name">Group name</label>
          <input id="group-name" name="name" required maxlength={64} />
          <FormEnd error={error} busy={busy} submit="Create" onCancel={() => setCreating(false)} />
        </form>
      )}
      <ErrorText error={groups.error} />
      {groups.data && groups.data.length === 0 && <p class="hint">No groups yet. Grants to a group reach all its members.</p>}
      {groups.data?.map((g) => (
        <article key={g.name} class="card stack" aria-label={`Group ${g.name}`}>
          <h2>{g.name}</h2>
          <Members group={g.name} members={g.members} reload={groups.reload} />
          <GrantsPanel target={{ group: g.name }} />
          <ConfirmButton
            label="Delete group"
            danger
            title={`Delete ${g.name}?`}
            question={<p>Its grants go with it: what only they allowed ends at once for its members.</p>}
            confirmLabel="Delete group"
            onConfirm={async () => {
              await api("DELETE /api/groups/:group", { params: { group: g.name } });
              await groups.reload();
            }}
          />
        </article>
      ))}
    </section>
  );
}

function Members({ group, members, reload }: { group: string; members: string[]; reload: () => Promise<void> }) {
  const [name, setName] = useState("");
  const [run, busy, error] = useAction();
  const mounted = useMounted();
  return (
    <div class="stack">
      <p>{members.length ? `Members: ${members.join(", ")}` : "No members."}</p>
      <ul class="inline">
        {members.map((m) => (
          <li key={m}>
            <button type="button" disabled={busy} onClick={() => void run(async () => {
              await api("DELETE /api/groups/:group/members/:username", { params: { group, username: m } });
              await reload();
            })}>
              Remove {m}
            </button>
          </li>
        ))}
      </ul>
      <form
        class="filters"
        aria-label={`Add a member to ${group}`}
        onSubmit={(e: Event) => {
          e.preventDefault();
          void run(async () => {
            await api("PUT /api/groups/:group/members/:username", { params: { group, username: name.trim() } });
            if (mounted.current) setName("");
            await reload();
          });
        }}
      >
        <div class="field">
          <label for={`member-${group}`}>Member</label>
          <input id={`member-${group}`} required value={name} onInput={(e: Event) => setName((e.target as HTMLInputElement).value)} />
        </div>
        <button type="submit" disabled={busy}>
          Add member
        </button>
      </form>
      <ErrorText error={error} />
    </div>
  );
}

export function AccessRequestsScreen({ onChange }: { onChange: () => void }) {
  const requests = useLoad(() => api("GET /api/access-requests"), [], 15_000);
  const pending = (requests.data ?? []).filter((r) => r.status === "pending");
  const decided = (requests.data ?? []).filter((r) => r.status !== "pending");
  const reload = async () => {
    await requests.reload();
    onChange();
  };
  return (
    <section aria-labelledby="requests-title">
      <ScreenTitle reloads={requests}>
        <span id="requests-title">Access requests</span>
      </ScreenTitle>
      <ErrorText error={requests.error} />
      <p role="status" class="hint">
        {requests.data ? `${pending.length} pending` : ""}
      </p>
      {pending.length > 0 && (
        <Table columns={["Who", "VM", "Level", "For", "Reason", "Asked"]}>
          {pending.map((r) => (
            <RequestRow key={r.id} r={r} reload={reload} />
          ))}
        </Table>
      )}
      {decided.length > 0 && (
        <>
          <h2>Decided</h2>
          <Table columns={["Who", "VM", "Level", "Decision", "By", "Comment"]} actions={false}>
            {decided.map((r) => (
              <tr key={r.id}>
                <th scope="row">{r.user}</th>
                <td data-label="VM">{`${r.site} / ${r.hypervisor} / ${r.vm}`}</td>
                <td data-label="Level">{LEVEL_WORDS[r.level]}</td>
                <td data-label="Decision">{r.status === "approved" ? "Approved" : "Denied"}</td>
                <td data-label="By">{r.decidedBy ?? "—"}</td>
                <td data-label="Comment">{r.comment ?? ""}</td>
              </tr>
            ))}
          </Table>
        </>
      )}
    </section>
  );
}

function RequestRow({ r, reload }: { r: AccessRequest; reload: () => Promise<void> }) {
  const [comment, setComment] = useState("");
  const [run, busy, error] = useAction();
  const decide = (how: "approve" | "deny") =>
    void run(async () => {
      const route = how === "approve" ? "POST /api/access-requests/:id/approve" : "POST /api/access-requests/:id/deny";
      await api(route, { params: { id: r.id }, body: comment.trim() ? { comment: comment.trim() } : {} });
      await reload();
    });
  return (
    <tr>
      <th scope="row">{r.user}</th>
      <td data-label="VM">{`${r.site} / ${r.hypervisor} / ${r.vm}`}</td>
      <td data-label="Level">{LEVEL_WORDS[r.level]}</td>
      <td data-label="For">{r.minutes} min</td>
      <td data-label="Reason">{r.reason}</td>
      <td data-label="Asked">{when(r.createdAt)}</td>
      <td class="actions">
        <label for={`comment-${r.id}`} class="visually-hidden">
          Comment on {r.user}'s request
        </label>
        <input id={`comment-${r.id}`} placeholder="Comment (optional)" value={comment} onInput={(e: Event) => setComment((e.target as HTMLInputElement).value)} />
        <button type="button" class="primary" disabled={busy} onClick={() => decide("approve")}>
          Approve
        </button>
        <button type="button" class="danger" disabled={busy} onClick={() => decide("deny")}>
          Deny
        </button>
        <ErrorText error={error} />
      </td>
    </tr>
  );
}

/** Request access (Consoles): Level, Minutes, Reason, Send request; for one VM, or one typed in. */
export function RequestAccessDialog({ target, onClose }: { target: { site: string; hypervisor: string; vm: string; name: string } | null; onClose: () => void }) {
  const sites = useLoad(() => api("GET /api/sites"), []);
  const [run, busy, error] = useAction();
  const [sent, setSent] = useState<AccessRequest | null>(null);
  const mounted = useMounted();
  const submit = (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.target as HTMLFormElement);
    const where = target ?? { site: String(data.get("site")), hypervisor: String(data.get("hypervisor")).trim(), vm: String(data.get("vm")).trim() };
    void run(async () => {
      const request = await api("POST /api/access-requests", {
        body: { site: where.site, hypervisor: where.hypervisor, vm: where.vm, level: String(data.get("level")) as AccessLevel, minutes: Number(data.get("minutes")), reason: String(data.get("reason") ?? "") },
      });
      if (mounted.current) setSent(request);
    });
  };
  return (
    <Dialog title={target ? `Request access to ${target.name}` : "Request access"} onClose={onClose}>
      {sent ? (
        <div class="stack">
          <p role="status">Request sent: an administrator will approve or deny it.</p>
          <div class="actions">
            <button type="button" class="primary" onClick={onClose}>
              Done
            </button>
          </div>
        </div>
      ) : (
        <form class="stack" onSubmit={submit}>
          {!target && (
            <>
              <label for="req-site">Site</label>
              <select id="req-site" name="site">
                {(sites.data ?? []).map((s) => (
                  <option key={s.name} value={s.name}>
                    {s.name}
                  </option>
                ))}
              </select>
              <label for="req-hypervisor">Hypervisor</label>
              <input id="req-hypervisor" name="hypervisor" required />
              <label for="req-vm">VM</label>
              <input id="req-vm" name="vm" required aria-describedby="req-vm-hint" />
              <span class="hint" id="req-vm-hint">
                The VM's id, as your administrator gave it.
              </span>
            </>
          )}
          <label for="req-level">Level</label>
          <select id="req-level" name="level">
            {(Object.keys(LEVEL_WORDS) as AccessLevel[]).map((l) => (
              <option key={l} value={l} selected={l === "control"}>
                {LEVEL_WORDS[l]}
              </option>
            ))}
          </select>
          <label for="req-minutes">Minutes</label>
          <input id="req-minutes" name="minutes" type="number" min={1} max={10080} step={1} value="60" required />
          <label for="req-reason">Reason</label>
          <textarea id="req-reason" name="reason" required maxlength={500} />
          <FormEnd error={error} busy={busy} submit="Send request" onCancel={onClose} />
        </form>
      )}
    </Dialog>
  );
}
