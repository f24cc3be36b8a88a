/** Sign-in with a Porthole account (Cloudflare Access users never see this: their sign-in already answers). */
import { useRef, useState } from "hono/jsx/dom";
import { api, describeError, type Me } from "./app-api.ts";
import { ErrorText, useInitialFocus } from "./app-ui.tsx";

export function SignIn({ notice, onSignedIn }: { notice: string | null; onSignedIn: (me: Me) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  useInitialFocus(first);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await api("POST /api/session", { body: { username: String(form.get("username") ?? ""), password: String(form.get("password") ?? "") } }));
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  };
  return (
    <main class="panel signin">
      <h1>Porthole</h1>
      <p>Sign in to open consoles of your sites' VMs.</p>
      {notice && <p class="notice">{notice}</p>}
      <form onSubmit={submit} class="stack" aria-label="Sign in">
        <label for="signin-username">Username</label>
        <input id="signin-username" ref={first} name="username" autocomplete="username" required />
        <label for="signin-password">Password</label>
        <input id="signin-password" name="password" type="password" autocomplete="current-password" required />
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
        <ErrorText error={error} />
      </form>
    </main>
  );
}
