// Live updates: the event stream read with fetch (EventSource cannot send the
// bearer header), each event asking for a refresh, and a poll every
// POLL_INTERVAL_MS besides, so figures that change without an event (run
// times, heartbeats) stay fresh too.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
import { authHeaders } from './api.ts';

export const POLL_INTERVAL_MS = 1000;
/** Events arriving together cause one refresh after this pause. */
export const EVENT_COALESCE_MS = 150;
export const RECONNECT_DELAY_MS = 2000;

export interface LiveOptions {
  refresh: () => Promise<void>;
  onStatus: (live: boolean, note: string) => void;
}

export class Live {
  private readonly options: LiveOptions;
  private pollTimer: number | undefined;
  private eventTimer: number | undefined;
  private abort: AbortController | null = null;
  private refreshing = false;
  private again = false;

  constructor(options: LiveOptions) {
    this.options = options;
  }

  start(): void {
    this.stop();
    this.pollTimer = window.setInterval(() => void this.kick(), POLL_INTERVAL_MS);
    void this.stream();
  }

  stop(): void {
    window.clearInterval(this.pollTimer);
    this.abort?.abort();
    this.abort = null;
  }

  /** Refreshes now, or once more right after the refresh in flight. */
  async kick(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return;
    }
    this.refreshing = true;
    try {
      await this.options.refresh();
    } finally {
      this.refreshing = false;
      if (this.again) {
        this.again = false;
        void this.kick();
      }
    }
  }

  private onEvent(): void {
    if (this.eventTimer !== undefined) return;
    this.eventTimer = window.setTimeout(() => {
      this.eventTimer = undefined;
      void this.kick();
    }, EVENT_COALESCE_MS);
  }

  private async stream(): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    try {
      const res = await fetch('/v1/events', { headers: authHeaders(), signal: abort.signal, cache: 'no-store' });
      if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
      this.options.onStatus(true, 'live');
      await this.read(res.body.getReader());
    } catch {
      if (abort.signal.aborted) return;
    }
    if (abort.signal.aborted) return;
    this.options.onStatus(false, 'events lost, polling; reconnecting');
    window.setTimeout(() => {
      if (this.abort === abort) void this.stream();
    }, RECONNECT_DELAY_MS);
  }

  private async read(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!frame.startsWith(':')) this.onEvent();
      }
    }
  }
}
