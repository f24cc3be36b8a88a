/** Pieces every screen uses: loading with errors, actions with errors, copy fields, dialogs. */
import type { Child } from "hono/jsx";
import { useCallback, useEffect, useId, useRef, useState } from "hono/jsx/dom";
import { describeError } from "./app-api.ts";

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  reload: () => Promise<void>;
}

/**
 * False once the component is gone. hono/jsx/dom does not ignore a state update on an unmounted
 * component: it renders the stale component again into the old place (a revoked link's row kept its
 * Revoke button), so every update after an await checks this first.
 */
export function useMounted(): { current: boolean } {
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  return mounted as { current: boolean };
}

/**
 * Focuses the element once it is on the page (effects run a frame after mount), unless focus has
 * meanwhile gone into the same form, dialog or screen: someone quick (or a test) who already
 * clicked the second field keeps typing there instead of into the first.
 */
export function useInitialFocus(ref: { current: HTMLElement | null }): void {
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const area = el.closest("form, dialog, section") ?? document.body;
    const active = document.activeElement;
    if (active && active !== document.body && active !== el && area.contains(active)) return;
    el.focus();
  }, []);
}

/** Loads on mount and on `reload()`; with `pollMs`, again while the tab is visible. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], pollMs?: number): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const latest = useRef(0);
  const mounted = useMounted();
  const reload = useCallback(async () => {
    const n = ++latest.current;
    const current = () => n === latest.current && mounted.current;
    setLoading(true);
    try {
      const value = await load();
      if (!current()) return;
      setData(value);
      setError(null);
    } catch (err) {
      if (current()) setError(describeError(err));
    } finally {
      if (current()) setLoading(false);
    }
  }, deps);
  useEffect(() => {
    void reload();
    if (!pollMs) return;
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") void reload();
    }, pollMs);
    return () => clearInterval(timer);
  }, [reload]);
  return { data, error, loading, reload };
}

/**
 * Runs one action at a time and keeps its error for display beside the control that started it.
 * `run` resolves to whether the action succeeded: a caller whose success removes the component (a
 * form that closes) acts on that after `run`, once the action's own state is settled, never inside
 * the action, where a still-pending state update would land on the removed component.
 */
export function useAction(): [(fn: () => Promise<void>) => Promise<boolean>, boolean, string | null, (e: string | null) => void] {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const mounted = useMounted();
  const run = useCallback(async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
      return true;
    } catch (err) {
      if (mounted.current) setError(describeError(err));
      return false;
    } finally {
      if (mounted.current) setBusy(false);
    }
  }, []);
  return [run, busy, error, setError];
}

/** An error in words, announced to screen readers as it appears. */
export function ErrorText({ error, id }: { error: string | null | undefined; id?: string }) {
  return (
    <p class="error" role="alert" id={id} hidden={!error}>
      {error ?? ""}
    </p>
  );
}

/** How a form ends: its error in words, Cancel, and the submit button (disabled while it runs). */
export function FormEnd({ error, busy, submit, onCancel }: { error: string | null; busy: boolean; submit: string; onCancel: () => void }) {
  return (
    <>
      <ErrorText error={error} />
      <div class="actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" class="primary" disabled={busy}>
          {submit}
        </button>
      </div>
    </>
  );
}

/** A read-only field with a secret or a link to copy, and a Copy button that says what happened. */
export function CopyField({ label, value, multiline }: { label: string; value: string; multiline?: boolean }) {
  const id = useId();
  const [said, setSaid] = useState("");
  const mounted = useMounted();
  const field = useRef<HTMLInputElement | HTMLTextAreaElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      if (mounted.current) setSaid("Copied.");
    } catch {
      // No clipboard permission (e.g. plain http on a LAN name): leave it selected for Ctrl+C.
      field.current?.focus();
      field.current?.select();
      setSaid("Selected: press Ctrl+C (⌘C) to copy.");
    }
  };
  return (
    <div class="copy-field">
      <label for={id}>{label}</label>
      <div class="row">
        {multiline ? (
          <textarea id={id} ref={field} readonly rows={value.split("\n").length} spellcheck={false} value={value} />
        ) : (
          <input id={id} ref={field} readonly value={value} spellcheck={false} onFocus={(e: FocusEvent) => (e.target as HTMLInputElement).select()} />
        )}
        <button type="button" onClick={copy}>
          Copy
        </button>
      </div>
      <span class="hint" role="status">
        {said}
      </span>
    </div>
  );
}

/** A modal <dialog>: the browser traps focus, Escape closes it, and focus returns where it was. */
export function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: Child }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current!;
    const opener = document.activeElement as HTMLElement | null;
    if (!dialog.open) dialog.showModal();
    return () => {
      if (dialog.open) dialog.close();
      opener?.focus();
    };
  }, []);
  return (
    <dialog ref={ref} aria-labelledby={titleId} onClose={onClose}>
      <h2 id={titleId}>{title}</h2>
      {children}
    </dialog>
  );
}

/** A button whose action is asked about first, in a dialog with its own error line. */
export function ConfirmButton(props: {
  label: string;
  title: string;
  question: Child;
  confirmLabel: string;
  onConfirm: () => Promise<void>;
  danger?: boolean;
}) {
  const [open, setOpen] = useState(false);
  const [run, busy, error] = useAction();
  const mounted = useMounted();
  // One wrapping element, not a fragment: hono/jsx/dom leaves a fragment's nodes behind when a
  // conditional replaces it with nothing (a revoked link kept its Revoke button).
  return (
    <span class="confirm">
      <button type="button" class={props.danger ? "danger" : undefined} onClick={() => setOpen(true)}>
        {props.label}
      </button>
      {open && (
        <Dialog title={props.title} onClose={() => setOpen(false)}>
          <div>{props.question}</div>
          <ErrorText error={error} />
          <form
            method="dialog"
            class="actions"
            onSubmit={(e: Event) => {
              e.preventDefault();
              void run(props.onConfirm).then((done) => {
                if (done && mounted.current) setOpen(false);
              });
            }}
          >
            <button type="button" onClick={() => setOpen(false)}>
              Cancel
            </button>
            <button type="submit" class={props.danger ? "danger" : "primary"} disabled={busy}>
              {props.confirmLabel}
            </button>
          </form>
        </Dialog>
      )}
    </span>
  );
}

/** A screen's heading (focused when the screen opens), its New button, and Refresh for `reloads`. */
export function ScreenTitle({
  children,
  create,
  reloads,
}: {
  children: Child;
  /** A screen that makes things: its "New …" button, hidden while the form for it is open. */
  create?: { label: string; open: boolean; onOpen(): void };
  reloads?: { reload(): unknown; loading: boolean };
}) {
  const ref = useRef<HTMLHeadingElement>(null);
  useInitialFocus(ref);
  return (
    <div class="screen-title">
      <h1 ref={ref} tabindex={-1}>
        {children}
      </h1>
      {reloads && (
        <button type="button" onClick={() => void reloads.reload()} disabled={reloads.loading}>
          Refresh
        </button>
      )}
      {create && !create.open && (
        <button type="button" class="primary" onClick={create.onOpen}>
          {create.label}
        </button>
      )}
    </div>
  );
}

/**
 * A table of rows, with column headers (a `false` column is left out); the last column holds each
 * row's actions unless `actions` is false.
 */
export function Table({ columns, actions = true, children }: { columns: (string | false)[]; actions?: boolean; children: Child }) {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            {columns.filter((c) => c !== false).map((c) => (
              <th scope="col">{c}</th>
            ))}
            {actions && (
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
