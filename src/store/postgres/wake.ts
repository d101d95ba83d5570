// Wake-ups between coordinators sharing one database: the LISTEN side.
// Connection upkeep (reconnecting, polling while disconnected) runs on wall
// time like the driver's own pool, not on the store's clock: the store's
// clock decides job time, and a virtual one must not stall a reconnect.
import pg from 'pg';
import { POSTGRES_DEFAULTS } from '../../types/limits.ts';
import { WAKE_CHANNEL, type PgDb } from './db.ts';

/**
 * The LISTEN side of wake-ups: one dedicated connection (not from the pool,
 * which recycles its connections), opened on the first listener, re-opened
 * with backoff when it drops, LISTENing again each time. While it is down the
 * listeners are called every wakePollIntervalMs instead, and once when it is
 * back, since notifications sent meanwhile were lost.
 */
export class WakeListener {
  private readonly db: PgDb;
  private readonly storeId: string;
  private readonly listeners = new Set<() => void>();
  private client: pg.Client | null = null;
  private listening = false;
  private closed = false;
  private failures = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private waiters: (() => void)[] = [];
  /** What woke the listeners, for tests and diagnostics. */
  readonly stats = { notified: 0, polled: 0, reconnects: 0 };
  /** The server process of the listening connection, while there is one. */
  pid: number | null = null;

  constructor(db: PgDb, storeId: string) {
    this.db = db;
    this.storeId = storeId;
  }

  add(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.client && !this.reconnectTimer && !this.closed) void this.connect();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) void this.stop();
    };
  }

  ready(): Promise<void> {
    if (this.listening) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private fire(why: 'notified' | 'polled'): void {
    this.stats[why]++;
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; the others still hear the wake-up.
      }
    }
  }

  private async connect(): Promise<void> {
    this.startPolling();
    // The pool's own connection settings (pg-pool keeps the password out of enumeration: copy it by name).
    const options = this.db.pool.options;
    const client = new pg.Client({ ...options, password: options.password, application_name: 'gaffer-listen' });
    this.client = client;
    client.on('notification', (msg) => {
      if (msg.channel === WAKE_CHANNEL && this.db.wakeIsForUs(msg.payload, this.storeId)) this.fire('notified');
    });
    client.on('error', () => this.dropped(client));
    client.on('end', () => this.dropped(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${WAKE_CHANNEL}`);
      this.pid = Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
    } catch {
      this.dropped(client);
      return;
    }
    if (this.client !== client) return;
    const reconnected = this.failures > 0;
    this.failures = 0;
    this.listening = true;
    this.stopPolling();
    for (const resolve of this.waiters.splice(0)) resolve();
    // Anything sent while nobody listened was lost: look once.
    if (reconnected) this.fire('polled');
  }

  private dropped(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.listening = false;
    this.pid = null;
    void client.end().catch(() => {});
    if (this.closed || this.listeners.size === 0) return;
    this.startPolling();
    const delay = Math.min(POSTGRES_DEFAULTS.listenReconnectMaxDelayMs, POSTGRES_DEFAULTS.listenReconnectBaseDelayMs * 2 ** this.failures);
    this.failures = Math.min(this.failures + 1, 30);
    this.stats.reconnects++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closed && this.listeners.size > 0) void this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private startPolling(): void {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => this.fire('polled'), POSTGRES_DEFAULTS.wakePollIntervalMs);
    this.pollTimer.unref();
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  private async stop(): Promise<void> {
    this.stopPolling();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const client = this.client;
    this.client = null;
    this.listening = false;
    this.pid = null;
    this.failures = 0;
    if (client) await client.end().catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    await this.stop();
  }
}
