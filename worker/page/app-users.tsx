/**
 * Users (admin): create with a role, change the role, disable or enable, delete. Cloudflare Access
 * identities without an account are listed too (role, block); one never seen can be blocked ahead.
 */
import { useRef, useState } from "hono/jsx/dom";
import type { Role, UserEntry as User } from "../../shared/api/types.ts";
import { api, type Me, when } from "./app-api.ts";
import { AccessButton } from "./app-access.tsx";
import { ConfirmButton, Dialog, ErrorText, FormEnd, ScreenTitle, Table, useAction, useInitialFocus, useLoad, useMounted } from "./app-ui.tsx";

const ROLES: { value: Role; label: string }[] = [
  { value: "viewer", label: "Viewer: watches consoles" },
  { value: "operator", label: "Operator: uses consoles, makes share links" },
  { value: "admin", label: "Administrator: everything" },
  { value: "member", label: "Member: only what is granted" },
  { value: "auditor", label: "Auditor: audit trail and live sessions, no consoles" },
];

function NewUserForm({ onCreated, onCancel }: { onCreated: () => void; onCancel: () => void }) {
  const [run, busy, error] = useAction();
  const first = useRef<HTMLInputElement>(null);
  useInitialFocus(first);
  return (
    <form
      class="card stack"
      aria-label="New user"
      onSubmit={(e: Event) => {
        e.preventDefault();
        const form = e.target as HTMLFormElement;
        const data = new FormData(form);
        void run(async () => {
          await api("POST /api/users", { body: { username: String(data.get("username")).trim(), password: String(data.get("password") ?? ""), role: data.get("role") as Role } });
        }).then((done) => done && onCreated());
      }}
    >
      <label for="new-username">Username</label>
      <input id="new-username" ref={first} name="username" required autocomplete="off" aria-describedby="new-username-hint" />
      <span class="hint" id="new-username-hint">
        Letters, digits and . _ @ + - (an email address works).
      </span>
      <label for="new-password">Password</label>
      <input id="new-password" name="password" type="password" required minlength={12} autocomplete="new-password" aria-describedby="new-password-hint" />
      <span class="hint" id="new-password-hint">
        At least 12 characters.
      </span>
      <label for="new-role">Role</label>
      <select id="new-role" name="role">
        {ROLES.map((r) => (
          <option key={r.value} value={r.value} selected={r.value === "operator"}>
            {r.label}
          </option>
        ))}
      </select>
      <FormEnd error={error} busy={busy} submit="Create" onCancel={onCancel} />
    </form>
  );
}

export function UsersScreen({ me }: { me: Me }) {
  const users = useLoad(() => api("GET /api/users"), []);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<string | null>(null);
  return (
    <section aria-labelledby="users-title">
      <ScreenTitle create={{ label: "New user", open: creating, onOpen: () => setCreating(true) }}>
        <span id="users-title">Users</span>
      </ScreenTitle>
      {creating && (
        <NewUserForm
          onCancel={() => setCreating(false)}
          onCreated={() => {
            setCreating(false);
            setCreated("The user can sign in now.");
            void users.reload();
          }}
        />
      )}
      <p role="status" class="hint">
        {created ?? ""}
      </p>
      <BlockAccessForm reload={users.reload} />
      <ErrorText error={users.error} />
      {users.data && (
        <Table columns={["User", "Role", "Status", "Since"]}>
          {users.data.map((u) => (
            <UserRow key={u.username} u={u} me={me} reload={users.reload} />
          ))}
        </Table>
      )}
    </section>
  );
}

function UserRow({ u, me, reload }: { u: User; me: Me; reload: () => Promise<void> }) {
  const [run, busy, error] = useAction();
  const patch = (change: { role?: Role; disabled?: boolean }) =>
    run(async () => {
      try {
        await api("PATCH /api/users/:username", { params: { username: u.username }, body: change });
      } finally {
        // Whether it worked or not, show what the edge now holds (a refused role change snaps back).
        await reload();
      }
    });
  const self = u.username === me.user;
  return (
    <tr>
      <th scope="row">
        {u.username}
        {self && <span class="hint"> (you)</span>}
        {u.access && <span class="hint"> (Cloudflare Access)</span>}
      </th>
      <td data-label="Role">
        {u.builtIn ? (
          "Administrator"
        ) : (
          <select aria-label={`Role of ${u.username}`} value={u.role} disabled={busy} onChange={(e: Event) => void patch({ role: (e.target as HTMLSelectElement).value as Role })}>
            {ROLES.map((r) => (
              <option key={r.value} value={r.value} selected={r.value === u.role}>
                {r.label.split(":")[0]}
              </option>
            ))}
          </select>
        )}
      </td>
      <td data-label="Status">{u.builtIn ? "Built in (ADMIN_USERNAME secret)" : u.disabled ? (u.access ? "Blocked" : "Disabled") : "Active"}</td>
      <td data-label="Since">{u.createdAt ? when(u.createdAt) : "—"}</td>
      <td class="actions">
        {!u.builtIn && (
          <>
            <button type="button" disabled={busy} onClick={() => void patch({ disabled: !u.disabled })}>
              {u.disabled ? "Enable" : "Disable"}
            </button>
            {!u.access && <SetPassword username={u.username} />}
            {u.role !== "admin" && u.role !== "auditor" && <AccessButton username={u.username} />}
            <ConfirmButton
              label="Delete"
              danger
              title={`Delete ${u.username}?`}
              question={
                <p>
                  Their sign-ins, API tokens, open consoles and share links end. This cannot be undone.
                  {(u.access || u.username.includes("@")) && " Cloudflare Access will not let this email in again until you enable it."}
                </p>
              }
              confirmLabel="Delete user"
              onConfirm={async () => {
                await api("DELETE /api/users/:username", { params: { username: u.username } });
                await reload();
              }}
            />
          </>
        )}
        <ErrorText error={error} />
      </td>
    </tr>
  );
}

/** Blocks an Access identity by email, seen or not (PATCH /api/users/:email {disabled:true}). */
function BlockAccessForm({ reload }: { reload: () => Promise<void> }) {
  const [email, setEmail] = useState("");
  const [run, busy, error] = useAction();
  const mounted = useMounted();
  return (
    <form
      class="filters"
      aria-label="Block an Access identity"
      onSubmit={(e: Event) => {
        e.preventDefault();
        void run(async () => {
          await api("PATCH /api/users/:username", { params: { username: email.trim() }, body: { disabled: true } });
          if (mounted.current) setEmail("");
          await reload();
        });
      }}
    >
      <div class="field">
        <label for="block-email">Access email</label>
        <input id="block-email" type="email" required value={email} placeholder="someone@example.com" onInput={(e: Event) => setEmail((e.target as HTMLInputElement).value)} />
      </div>
      <button type="submit" disabled={busy}>
        Block
      </button>
      <ErrorText error={error} />
    </form>
  );
}

/** A new password for someone else (PATCH /api/users/:username {password}): their other sign-ins end. */
function SetPassword({ username }: { username: string }) {
  const [open, setOpen] = useState(false);
  const [done, setDone] = useState(false);
  const [run, busy, error] = useAction();
  const mounted = useMounted();
  return (
    <span class="confirm">
      <button type="button" onClick={() => setOpen(true)}>
        Set password
      </button>
      {open && (
        <Dialog title={`New password for ${username}`} onClose={() => setOpen(false)}>
          <form
            class="stack"
            onSubmit={(e: Event) => {
              e.preventDefault();
              const password = new FormData(e.target as HTMLFormElement).get("password");
              void run(async () => void (await api("PATCH /api/users/:username", { params: { username }, body: { password: String(password ?? "") } }))).then((ok) => {
                if (!ok || !mounted.current) return;
                setOpen(false);
                setDone(true);
              });
            }}
          >
            <label for="set-password">New password</label>
            <input id="set-password" name="password" type="password" required minlength={12} autocomplete="new-password" />
            <span class="hint">At least 12 characters. Tell them another way than this screen.</span>
            <FormEnd error={error} busy={busy} submit="Save password" onCancel={() => setOpen(false)} />
          </form>
        </Dialog>
      )}
      <span role="status" class="hint">
        {done ? " Password changed." : ""}
      </span>
    </span>
  );
}
