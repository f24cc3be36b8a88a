/** Live consoles: who (or which share link) is watching what, and End session. */
import type { LiveConsole } from "../../shared/api/types.ts";
import { api, bytes, type Me, since, when } from "./app-api.ts";
import { ConfirmButton, ErrorText, ScreenTitle, useLoad, Table } from "./app-ui.tsx";

function who(s: LiveConsole): string {
  if (s.user) return s.user;
  if (s.linkId) return `Share link ${s.linkId}${s.linkCreatedBy ? ` (made by ${s.linkCreatedBy})` : ""}`;
  return "unknown";
}

export function SessionsScreen({ me }: { me: Me }) {
  const list = useLoad(() => api("GET /api/sessions"), [], 5000);
  return (
    <section aria-labelledby="sessions-title">
      <ScreenTitle reloads={list}>
        <span id="sessions-title">Sessions</span>
      </ScreenTitle>
      <p class="hint">
        {me.role === "admin" ? "Every console open right now." : "Consoles open right now: yours, and those opened through your share links."} The list
        refreshes every 5 seconds.
      </p>
      <ErrorText error={list.error} />
      {list.data?.length === 0 && <p role="status">No console is open right now.</p>}
      {!!list.data?.length && (
        <Table columns={["VM", "Who", "Mode", "Since", "Sent to viewer", "From viewer"]}>
          {list.data.map((s) => (
            <tr key={s.id}>
              <th scope="row">
                {s.vm}
                <div class="hint">
                  {s.site} / {s.hypervisor}
                </div>
              </th>
              <td data-label="Who">
                {who(s)}
                {/* The name the others on that console see in Watching now. */}
                {s.linkId && <div class="hint">{s.watcher}</div>}
              </td>
              <td data-label="Mode">{s.viewOnly ? "View only" : "Full control"}</td>
              <td data-label="Since">
                <time dateTime={s.openedAt} title={when(s.openedAt)}>
                  {when(s.openedAt)} ({since(s.openedAt)})
                </time>
              </td>
              <td data-label="Sent to viewer">{bytes(s.bytesDown)}</td>
              <td data-label="From viewer">{bytes(s.bytesUp)}</td>
              <td class="actions">
                <ConfirmButton
                  label="End session"
                  danger
                  title={`End the console of ${s.vm} for ${who(s)}?`}
                  question={<p>The viewer's page closes and says that you ended it.</p>}
                  confirmLabel="End it"
                  onConfirm={async () => {
                    await api("DELETE /api/sessions/:id", { params: { id: s.id } });
                    await list.reload();
                  }}
                />
              </td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}
