// `gaffer watch`: the pool at a glance in the terminal, redrawn every
// interval until Ctrl-C: the queues (jobs per state, slots), the workers
// (state and slots) and the latest events (jobs that ended, workers that came,
// went or were quarantined), from the coordinator's event stream.
import type { Command } from 'commander';
import type { GafferClient, GafferEvent } from '../client/client.ts';
import type { Worker } from '../types/model.ts';
import { statsTable, type QueuesAnswer } from './client-commands.ts';
import { clientFrom, tokenOption, urlOption } from './common.ts';
import { shortTime, table } from './job-views.ts';

/** The most recent events shown (older ones scroll away). */
export const WATCH_EVENTS_SHOWN_MAX = 12;
/** The most workers listed; the rest are counted. */
export const WATCH_WORKERS_SHOWN_MAX = 30;
export const WATCH_INTERVAL_MS_DEFAULT = 2000;
const ENDED = new Set(['succeeded', 'failed', 'cancelled', 'expired']);

export interface WatchView {
  queues: QueuesAnswer;
  workers: readonly Worker[];
  events: readonly string[];
  at: number;
}

/** One screen of the watch, as text. */
export function watchScreen(v: WatchView, url: string): string {
  const shown = v.workers.slice(0, WATCH_WORKERS_SHOWN_MAX);
  const rows = shown.map((w) => [w.name, w.state, Object.entries(w.queues).map(([q, n]) => `${q} ${w.running[q] ?? 0}/${n}`).join(', ')]);
  const workers = v.workers.length === 0 ? ['no workers'] : table(['WORKER', 'STATE', 'SLOTS'], rows);
  if (v.workers.length > shown.length) workers.push(`… and ${v.workers.length - shown.length} more (gaffer workers lists them all)`);
  return [
    `gaffer watch · ${url} · ${shortTime(v.at)} UTC · Ctrl-C to stop`,
    '',
    statsTable(v.queues),
    '',
    ...workers,
    '',
    'RECENT EVENTS',
    ...(v.events.length === 0 ? ['none yet'] : v.events),
  ].join('\n');
}

/** An event as one line, or null for those not worth a line (a job queued or started). */
export function eventLine(e: GafferEvent, names: ReadonlyMap<string, string>): string | null {
  const d = e.data as { at: number; jobId?: string; state?: string; workerId?: string; event?: string };
  const at = shortTime(d.at).slice(11);
  if (e.type === 'job') return ENDED.has(d.state ?? '') ? `${at}  job ${d.jobId} ${d.state}` : null;
  if (e.type !== 'worker' || d.workerId === undefined) return null;
  return `${at}  worker ${names.get(d.workerId) ?? d.workerId} ${d.event}`;
}

async function follow(client: GafferClient, signal: AbortSignal, names: ReadonlyMap<string, string>, events: string[]): Promise<void> {
  try {
    for await (const e of client.watch({ signal })) {
      const line = eventLine(e, names);
      if (line === null) continue;
      events.push(line);
      if (events.length > WATCH_EVENTS_SHOWN_MAX) events.shift();
    }
  } catch (err) {
    if (!signal.aborted) events.push(`event stream lost: ${(err as Error).message}`);
  }
}

export function registerWatch(program: Command): void {
  program
    .command('watch')
    .description('the queues, workers and latest events, redrawn in the terminal until Ctrl-C')
    .addOption(urlOption())
    .addOption(tokenOption())
    .option('--interval-ms <n>', 'how often to redraw', String(WATCH_INTERVAL_MS_DEFAULT))
    .option('--count <n>', 'stop after this many screens (for scripts; default: until Ctrl-C)')
    .action(async (opts: { url?: string; token?: string; intervalMs: string; count?: string }) => {
      const client = clientFrom(opts);
      const url = opts.url ?? process.env.GAFFER_URL ?? 'http://127.0.0.1:7070';
      const intervalMs = Math.max(200, Number.parseInt(opts.intervalMs, 10) || WATCH_INTERVAL_MS_DEFAULT);
      const count = opts.count === undefined ? Infinity : Number.parseInt(opts.count, 10);
      const names = new Map<string, string>();
      const events: string[] = [];
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      const stream = follow(client, stop.signal, names, events);
      const tty = process.stdout.isTTY === true;
      for (let n = 0; n < count && !stop.signal.aborted; n++) {
        const [queues, workers] = await Promise.all([client.queues() as Promise<QueuesAnswer>, client.workers()]);
        for (const w of workers) names.set(w.id, w.name);
        const screen = watchScreen({ queues, workers, events, at: Date.now() }, url);
        // A terminal is redrawn in place; a pipe gets each screen after the last.
        process.stdout.write(tty ? `\x1b[H\x1b[2J${screen}\n` : `${screen}\n\n`);
        if (n + 1 < count) await new Promise((r) => setTimeout(r, intervalMs));
      }
      stop.abort();
      await stream;
    });
}
