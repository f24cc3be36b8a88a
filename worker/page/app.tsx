/**
 * The operator app at `/`: sign in, then one screen per job (consoles, sites, sessions, share
 * links, users, API tokens, audit). Hono's own `hono/jsx/dom` renders it: no dependency beyond the
 * edge's, a few kilobytes. Screens live in app-<screen>.tsx; the address bar's hash names the screen.
 */
import type { FC } from "hono/jsx";
import { render, useEffect, useState } from "hono/jsx/dom";
import { api, ApiFailure, describeError, type Me, type Role, whenSignedOut } from "./app-api.ts";
import { AuditScreen } from "./app-audit.tsx";
import { ConsolesScreen } from "./app-consoles.tsx";
import { LinksScreen } from "./app-links.tsx";
import { RecordingsScreen } from "./app-recordings.tsx";
import { SessionsScreen } from "./app-sessions.tsx";
import { SignIn } from "./app-signin.tsx";
import { SitesScreen } from "./app-sites.tsx";
import { TokensScreen } from "./app-tokens.tsx";
import { ErrorText } from "./app-ui.tsx";
import { UsersScreen } from "./app-users.tsx";
import { AccessRequestsScreen, GroupsScreen } from "./app-access.tsx";
import { useLoad } from "./app-ui.tsx";

interface Screen {
  path: string;
  name: string;
  roles: Role[];
  View: FC<{ me: Me; refreshCounts: () => void }>;
}

const EVERYONE: Role[] = ["admin", "operator", "viewer", "member", "auditor"];
/** Everyone who may open a console (auditors never do). */
const CONSOLE_ROLES: Role[] = ["admin", "operator", "viewer", "member"];
/** What each role may use mirrors what the API allows it; the edge enforces it regardless. */
const SCREENS: Screen[] = [
  { path: "consoles", name: "Consoles", roles: CONSOLE_ROLES, View: ConsolesScreen },
  { path: "sites", name: "Sites", roles: ["admin"], View: SitesScreen },
  { path: "sessions", name: "Sessions", roles: EVERYONE, View: SessionsScreen },
  // Viewers and members share only through a grant; members see the screen, viewers keep what they had.
  { path: "links", name: "Share links", roles: ["admin", "operator", "member"], View: LinksScreen },
  { path: "users", name: "Users", roles: ["admin"], View: UsersScreen },
  { path: "groups", name: "Groups", roles: ["admin"], View: GroupsScreen },
  { path: "access-requests", name: "Access requests", roles: ["admin"], View: ({ refreshCounts }) => <AccessRequestsScreen onChange={refreshCounts} /> },
  { path: "tokens", name: "API tokens", roles: EVERYONE, View: TokensScreen },
  { path: "audit", name: "Audit", roles: ["admin", "auditor"], View: AuditScreen },
  { path: "recordings", name: "Recordings", roles: ["admin", "auditor"], View: RecordingsScreen },
];

function currentPath(): string {
  return location.hash.replace(/^#\/?/, "").split("?")[0] ?? "";
}

/**
 * After sign-in, go back to the console address that sent the person here (same-origin /open only).
 * Any site can send a person to `/?next=…`, so the console page asks before it opens (`ask=1`).
 */
function continueToNext(): boolean {
  const next = new URLSearchParams(location.search).get("next");
  if (!next || !next.startsWith("/open?")) return false;
  location.replace(`${next}&ask=1`);
  return true;
}

const ROLE_WORDS: Record<Role, string> = { admin: "administrator", operator: "operator", viewer: "viewer", member: "member", auditor: "auditor" };

function Shell({ me, onSignOut }: { me: Me; onSignOut: () => Promise<void> }) {
  const [path, setPath] = useState(currentPath());
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const onHash = () => setPath(currentPath());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const mine = SCREENS.filter((s) => s.roles.includes(me.role));
  // Pending access requests, counted in the navigation for admins (polled while the tab is visible).
  const pending = useLoad(async () => (me.role === "admin" ? (await api("GET /api/access-requests", { query: { status: "pending" } })).length : 0), [me.role], 20_000);
  const screen = mine.find((s) => s.path === path) ?? mine[0]!;
  return (
    <>
      <header class="app-header">
        <a class="brand" href="#/consoles">
          Porthole
        </a>
        <nav aria-label="Main">
          <ul>
            {mine.map((s) => (
              <li key={s.path}>
                <a href={`#/${s.path}`} aria-current={s === screen ? "page" : undefined}>
                  {s.name}
                  {s.path === "access-requests" && (pending.data ?? 0) > 0 && (
                    <span class="badge" data-testid="pending-requests">
                      {" "}
                      {pending.data}
                    </span>
                  )}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span data-testid="who">
            {me.user} · {ROLE_WORDS[me.role]}
            {me.via === "access" ? " · via Cloudflare Access" : ""}
          </span>
          <button
            type="button"
            onClick={() =>
              onSignOut().catch((err: unknown) => {
                setError(describeError(err));
              })
            }
          >
            Sign out
          </button>
          <ErrorText error={error} />
        </div>
      </header>
      <main class="app-main">
        <screen.View key={screen.path} me={me} refreshCounts={() => void pending.reload()} />
      </main>
    </>
  );
}

function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [notice, setNotice] = useState<string | null>(null);
  const [checkError, setCheckError] = useState<string | null>(null);

  const check = async () => {
    setCheckError(null);
    try {
      // With Cloudflare Access (or a live cookie) this already answers: no form to fill in.
      const who = await api("GET /api/session");
      if (continueToNext()) return;
      setMe(who);
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) setMe(null);
      else setCheckError(describeError(err));
    }
  };
  useEffect(() => {
    whenSignedOut((why) => {
      setNotice(`You are signed out (${why.replace(/\.$/, "")}). Sign in again.`);
      setMe(null);
    });
    void check();
  }, []);

  if (checkError) {
    return (
      <main class="panel">
        <h1>Porthole</h1>
        <ErrorText error={checkError} />
        <button type="button" onClick={() => void check()}>
          Try again
        </button>
      </main>
    );
  }
  if (me === undefined) {
    return (
      <main class="panel">
        <h1>Porthole</h1>
        <p role="status">Checking your sign-in…</p>
      </main>
    );
  }
  if (me === null) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(who) => {
          setNotice(null);
          if (!continueToNext()) setMe(who);
        }}
      />
    );
  }
  return (
    <Shell
      me={me}
      onSignOut={async () => {
        await api("DELETE /api/session");
        // Access signed this person in; only Access can sign them out of it.
        if (me.via === "access") location.assign("/cdn-cgi/access/logout");
        else setMe(null);
      }}
    />
  );
}

render(<App />, document.getElementById("app")!);
