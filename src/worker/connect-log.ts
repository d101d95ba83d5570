// What a worker says when it cannot reach its coordinator, or loses it. A
// worker retries for ever (with backoff), so saying the same thing at every
// try would bury everything else: each kind of trouble is said once when it
// starts, again only every repeatLogMs while it lasts, and the connection's
// return is said once. The words say why (refused, unauthorised, no worker
// endpoint at that path, no such host, timed out) and where.
import type { Logger } from 'pino';

/** While the same trouble lasts, it is logged again this often. */
export const CONNECT_TROUBLE_REPEAT_LOG_MS = 60_000;

export type ConnectTrouble = { kind: 'error'; code: string; message: string } | { kind: 'status'; status: number };

/** The sentence for one failed attempt to connect to url. */
export function describeTrouble(url: string, t: ConnectTrouble): string {
  if (t.kind === 'status') {
    if (t.status === 401 || t.status === 403) return `the coordinator at ${url} refused this worker's token (HTTP ${t.status}): check --token or GAFFER_TOKEN`;
    if (t.status === 404) return `no worker endpoint at ${url} (HTTP 404): --url names the coordinator's address, e.g. http://127.0.0.1:7070, without a path`;
    return `the coordinator at ${url} answered HTTP ${t.status} instead of accepting the worker`;
  }
  switch (t.code) {
    case 'ECONNREFUSED':
      return `cannot connect to ${url}: connection refused (nothing listens there; is the coordinator running? the default is http://127.0.0.1:7070, set --url or GAFFER_URL)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot connect to ${url}: no such host`;
    case 'ETIMEDOUT':
    case 'HANDSHAKE_TIMEOUT':
      return `cannot connect to ${url}: timed out`;
    default:
      return `cannot connect to ${url}: ${t.message}`;
  }
}

function troubleKey(t: ConnectTrouble): string {
  return t.kind === 'status' ? `status:${t.status}` : `error:${t.code}`;
}

export class ConnectLog {
  private trouble: ConnectTrouble | null = null;
  private key = '';
  private loggedAt = -Infinity;
  private failedTries = 0;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly repeatLogMs: number;

  constructor(log: Logger, now: () => number = Date.now, repeatLogMs = CONNECT_TROUBLE_REPEAT_LOG_MS) {
    this.log = log;
    this.now = now;
    this.repeatLogMs = repeatLogMs;
  }

  /** What went wrong with the connection being made: the first cause counts (terminating a refused socket errors too). */
  noteTrouble(t: ConnectTrouble): void {
    this.trouble ??= t;
  }

  /** A connection closed before the coordinator welcomed it: say why, unless just said. */
  failed(url: string, code: number): void {
    const t = this.trouble ?? { kind: 'error', code: `CLOSE_${code}`, message: `closed before the coordinator answered (code ${code})` };
    this.trouble = null;
    this.failedTries++;
    const key = `${url} ${troubleKey(t)}`;
    const now = this.now();
    if (key === this.key && now - this.loggedAt < this.repeatLogMs) {
      this.log.debug({ url, tries: this.failedTries }, 'still cannot connect; retrying');
      return;
    }
    this.key = key;
    this.loggedAt = now;
    this.log.warn({ tries: this.failedTries }, `${describeTrouble(url, t)}; retrying`);
  }

  /** A welcomed connection closed: said once; the retries after it are failures like any other. */
  lost(url: string, code: number, reason: string, running: number): void {
    this.trouble = null;
    this.key = '';
    this.log.warn({ url, code, reason, running }, 'disconnected from the coordinator; reconnecting');
  }

  connected(): void {
    this.trouble = null;
    this.key = '';
    this.failedTries = 0;
  }
}
