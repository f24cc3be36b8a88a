/**
 * Recordings (admins and auditors): recorded consoles, filtered by site, VM, person and time;
 * Play opens the player (player.html), Download the raw file (docs/recording.md), Delete (admins).
 */
import { useState } from "hono/jsx/dom";
import type { Recording, RecordingQuery } from "../../shared/api/types.ts";
import { api, bytes, type Me, when } from "./app-api.ts";
import { ConfirmButton, ErrorText, ScreenTitle, Table, useLoad } from "./app-ui.tsx";

interface Filter {
  site: string;
  vm: string;
  user: string;
  since: string;
  until: string;
}
const EMPTY: Filter = { site: "", vm: "", user: "", since: "", until: "" };

function query(f: Filter): RecordingQuery {
  const q: RecordingQuery = {};
  for (const key of ["site", "vm", "user"] as const) if (f[key].trim()) q[key] = f[key].trim();
  // datetime-local gives the person's local time; the API takes ISO times.
  if (f.since) q.since = new Date(f.since).toISOString();
  if (f.until) q.until = new Date(f.until).toISOString();
  return q;
}

function duration(r: Recording): string {
  if (!r.endedAt) return "still recording";
  const s = Math.max(0, Math.round((Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000));
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

const STATE_WORDS: Record<Recording["state"], string> = {
  recording: "Recording",
  complete: "Complete",
  incomplete: "Incomplete (storage fell behind or failed)",
  interrupted: "Interrupted (the edge restarted)",
};

export function RecordingsScreen({ me }: { me: Me }) {
  const [draft, setDraft] = useState<Filter>(EMPTY);
  const [filter, setFilter] = useState<Filter>(EMPTY);
  const list = useLoad(() => api("GET /api/recordings", { query: query(filter) }), [filter]);
  const set = (key: keyof Filter) => (e: Event) => setDraft({ ...draft, [key]: (e.target as HTMLInputElement).value });
  const field = (key: keyof Filter, label: string, type = "text") => (
    <div class="field">
      <label for={`rec-${key}`}>{label}</label>
      <input id={`rec-${key}`} type={type} value={draft[key]} onInput={set(key)} />
    </div>
  );
  return (
    <section aria-labelledby="recordings-title">
      <ScreenTitle reloads={list}>
        <span id="recordings-title">Recordings</span>
      </ScreenTitle>
      <p class="hint">Recorded consoles, newest first. A site records consoles when an administrator turns Recording on for it (Sites).</p>
      <form
        class="filters"
        aria-label="Filter recordings"
        onSubmit={(e: Event) => {
          e.preventDefault();
          setFilter(draft);
        }}
      >
        {field("site", "Site")}
        {field("vm", "VM")}
        {field("user", "Person")}
        {field("since", "Since", "datetime-local")}
        {field("until", "Until", "datetime-local")}
        <div class="actions">
          <button type="submit">Filter</button>
        </div>
      </form>
      <ErrorText error={list.error} />
      {list.data?.length === 0 && <p role="status">No recordings.</p>}
      {!!list.data?.length && (
        <Table columns={["VM", "Who", "Started", "Duration", "Size", "State"]}>
          {list.data.map((r) => (
            <tr key={r.id}>
              <th scope="row">
                {r.vm}
                <div class="hint">
                  {r.site} / {r.hypervisor}
                </div>
              </th>
              <td data-label="Who">{r.user ?? `Share link ${r.linkId ?? ""}`}</td>
              <td data-label="Started">
                <time dateTime={r.startedAt}>{when(r.startedAt)}</time>
              </td>
              <td data-label="Duration">{duration(r)}</td>
              <td data-label="Size">{bytes(r.bytes)}</td>
              <td data-label="State">{STATE_WORDS[r.state]}</td>
              <td class="actions">
                <a class="button" href={`/player#${encodeURIComponent(r.id)}`} target="_blank" rel="noopener">
                  Play
                </a>{" "}
                <a href={`/api/recordings/${encodeURIComponent(r.id)}/file`} download>
                  Download
                </a>{" "}
                {me.role === "admin" && r.state !== "recording" && (
                  <ConfirmButton
                    label="Delete"
                    danger
                    title={`Delete the recording of ${r.vm} from ${when(r.startedAt)}?`}
                    question={<p>The recording is gone for good; the audit trail keeps that you deleted it.</p>}
                    confirmLabel="Delete"
                    onConfirm={async () => {
                      await api("DELETE /api/recordings/:id", { params: { id: r.id } });
                      await list.reload();
                    }}
                  />
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}
