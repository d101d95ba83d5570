// What every page of the dashboard is: it draws itself once into a root
// element and refreshes its figures when asked (on an event or the poll).
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import type { Capabilities } from './api.ts';

export interface PageContext {
  caps: Capabilities;
  /** The route's parameters: #/jobs/<id> gives ['<id>']. */
  params: string[];
  /** The hash's query: #/jobs?queue=a gives queue=a. */
  query: URLSearchParams;
  /** Shows a message over the page; errors in red. */
  notify(message: string, isError?: boolean): void;
  /** Refreshes the page now (after an action). */
  refresh(): void;
}

export interface Page {
  render(root: HTMLElement, ctx: PageContext): void;
  refresh(): Promise<void>;
  /** Called when the page is left (charts let go of their data). */
  dispose?(): void;
}

/** Runs an action from a button: disables it while it runs, shows the answer or the error. */
export async function runAction(ctx: PageContext, button: HTMLButtonElement, action: () => Promise<unknown>, done: string): Promise<void> {
  button.disabled = true;
  try {
    await action();
    ctx.notify(done);
  } catch (err) {
    const e = err as { status?: number; code?: string; message?: string };
    ctx.notify(`${e.code ?? 'ERROR'}${e.status ? ` (${e.status})` : ''}: ${e.message ?? String(err)}`, true);
  } finally {
    button.disabled = false;
    ctx.refresh();
  }
}
