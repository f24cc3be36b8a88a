/** Audit (admin): newest first, filters, paging by the edge's `Link: rel="next"`, and CSV export. */
import { useEffect, useState } from "hono/jsx/dom";
import type { AuditQuery, AuditRow } from "../../shared/api/types.ts";
import { apiAnswer, describeError, type Me, when } from "./app-api.ts";
import { ErrorText, ScreenTitle, useAction, useMounted } from "./app-ui.tsx";

interface Filter {
  type: string;
  actor: string;
  site: string;
  since: string;
  until: string;
}

const PAGE_SIZE = 50;
const EMPTY: Filter = { type: "", actor: "", site: "", since: "", until: "" };
/** Export follows the same filter page by page, up to this many rows (a bound on the browser's memory). */
const EXPORT_MAX_ROWS = 50_000;
const COMMON_TYPES = ["console", "console.opened", "console.closed", "link", "link.created", "link.revoked", "signin", "signin.failed", "site", "user", "token"];

function query(f: Filter, limit: number): AuditQuery {
  const q: AuditQuery = {};
  for (const key of ["type", "actor", "site"] as const) if (f[key].trim()) q[key] = f[key].trim();
  // datetime-local gives the person's local time; the API takes ISO times.
  if (f.since) q.since = new Date(f.since).toISOString();
  if (f.until) q.until = new Date(f.until).toISOString();
  q.limit = limit;
  return q;
}

/** The next page: the same query from before the edge's `Link: <…?before=N>; rel="next"`. */
function nextOf(headers: Headers, q: AuditQuery): AuditQuery | null {
  const link = /<([^>]+)>;\s*rel="next"/.exec(headers.get("Link") ?? "")?.[1];
  const before = link ? Number(new URL(link, location.origin).searchParams.get("before")) : NaN;
  return Number.isInteger(before) && before > 0 ? { ...q, before } : null;
}

function detailText(d: Record<string, unknown> | undefined): string {
  if (!d) return "";
  return Object.entries(d)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" · ");
}

function csvCell(v: unknown): string {
  const s = v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
  // Quote everything; a leading = + - @ would be a formula in a spreadsheet, so it gets a '.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return `"${safe.replace(/"/g, '""')}"`;
}

export function AuditScreen(_: { me: Me }) {
  const [draft, setDraft] = useState<Filter>(EMPTY);
  const [filter, setFilter] = useState<Filter>(EMPTY);
  /** The query of the page shown, and those before it (for Previous page). */
  const [pages, setPages] = useState<AuditQuery[]>([query(EMPTY, PAGE_SIZE)]);
  const [rows, setRows] = useState<AuditRow[] | null>(null);
  const [next, setNext] = useState<AuditQuery | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [exportRun, exporting, exportError] = useAction();
  const [exported, setExported] = useState("");
  const mounted = useMounted();
  const current = pages[pages.length - 1]!;

  useEffect(() => {
    let live = true;
    setLoading(true);
    apiAnswer("GET /api/audit", { query: current })
      .then(({ body, headers }) => {
        if (!live) return;
        setRows(body);
        setNext(nextOf(headers, current));
        setError(null);
      })
      .catch((err: unknown) => live && setError(describeError(err)))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
    // By value, as the URL it stands for: the same filter applied again is the same page.
  }, [JSON.stringify(current)]);

  const apply = (f: Filter) => {
    setExported("");
    setFilter(f);
    setPages([query(f, PAGE_SIZE)]);
  };
  const set = (key: keyof Filter) => (e: Event) => setDraft({ ...draft, [key]: (e.target as HTMLInputElement).value });

  const exportCsv = () =>
    exportRun(async () => {
      setExported("");
      const lines = [["time", "type", "actor", "site", "detail"].map(csvCell).join(",")];
      let page: AuditQuery | null = query(filter, 1000);
      let count = 0;
      while (page && count < EXPORT_MAX_ROWS) {
        const { body, headers } = await apiAnswer("GET /api/audit", { query: page });
        for (const r of body) lines.push([r.at, r.type, r.actor, r.site, r.detail].map(csvCell).join(","));
        count += body.length;
        page = nextOf(headers, page);
      }
      const blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" });
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `porthole-audit-${new Date().toISOString().slice(0, 19).replace(/:/g, "-")}.csv`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      if (mounted.current) setExported(page ? `Exported the newest ${count} rows (the export stops at ${EXPORT_MAX_ROWS}; narrow the filter for older ones).` : `Exported ${count} rows.`);
    });

  return (
    <section aria-labelledby="audit-title">
      <ScreenTitle>
        <span id="audit-title">Audit</span>
      </ScreenTitle>
      <form
        class="filters"
        aria-label="Filter events"
        onSubmit={(e: Event) => {
          e.preventDefault();
          apply(draft);
        }}
      >
        <div class="field">
          <label for="audit-type">Type</label>
          <input id="audit-type" value={draft.type} list="audit-types" placeholder="e.g. console" onInput={set("type")} />
        </div>
        <datalist id="audit-types">
          {COMMON_TYPES.map((t) => (
            <option key={t} value={t} />
          ))}
        </datalist>
        <div class="field">
          <label for="audit-actor">Actor</label>
          <input id="audit-actor" value={draft.actor} placeholder="user or link:<id>" onInput={set("actor")} />
        </div>
        <div class="field">
          <label for="audit-site">Site</label>
          <input id="audit-site" value={draft.site} onInput={set("site")} />
        </div>
        <div class="field">
          <label for="audit-since">Since</label>
          <input id="audit-since" type="datetime-local" value={draft.since} onInput={set("since")} />
        </div>
        <div class="field">
          <label for="audit-until">Until</label>
          <input id="audit-until" type="datetime-local" value={draft.until} onInput={set("until")} />
        </div>
        <div class="actions">
          <button type="submit" class="primary">
            Apply filters
          </button>
          <button
            type="button"
            onClick={() => {
              setDraft(EMPTY);
              apply(EMPTY);
            }}
          >
            Clear filters
          </button>
        </div>
      </form>
      <ErrorText error={error} />
      <div class="table-wrap">
        <table aria-busy={loading}>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Type</th>
              <th scope="col">Actor</th>
              <th scope="col">Site</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {rows?.map((r) => (
              <tr key={r.id}>
                <td data-label="Time">
                  <time dateTime={r.at}>{when(r.at)}</time>
                </td>
                <td data-label="Type">{r.type}</td>
                <td data-label="Actor">{r.actor}</td>
                <td data-label="Site">{r.site ?? ""}</td>
                <td data-label="Details" class="detail">
                  {detailText(r.detail)}
                  {typeof r.detail?.recording === "string" && (
                    <>
                      {" "}
                      <a href={`/player#${encodeURIComponent(r.detail.recording)}`} target="_blank" rel="noopener">
                        Recording
                      </a>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {rows?.length === 0 && <p>No events match.</p>}
      <nav class="actions pager" aria-label="Audit pages">
        <button type="button" disabled={pages.length < 2 || loading} onClick={() => setPages(pages.slice(0, -1))}>
          Previous page
        </button>
        <span role="status">Page {pages.length}</span>
        <button type="button" disabled={!next || loading} onClick={() => next && setPages([...pages, next])}>
          Next page
        </button>
        <button type="button" disabled={exporting} onClick={() => void exportCsv()}>
          Export CSV
        </button>
      </nav>
      <ErrorText error={exportError} />
      <p role="status" class="hint">
        {exporting ? "Exporting…" : exported}
      </p>
    </section>
  );
}
