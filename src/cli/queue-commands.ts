// `gaffer queue pause NAME` / `gaffer queue resume NAME` (admin; with
// `--worker ID`, on that one worker only), and
// `gaffer history`: the stored per-minute or per-hour history of the queues.
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Worker } from '../types/model.ts';
import type { HistoryAnswer, HistoryPoint, QueueStateAnswer } from '../types/history.ts';
import { clientFrom, tokenOption, urlOption } from './common.ts';

interface Common {
  url?: string;
  token?: string;
  json?: boolean;
}

const withCommon = (cmd: Command): Command => cmd.addOption(urlOption()).addOption(tokenOption()).option('--json', 'print JSON for scripts');

const epochMs = (v: string): number => {
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('takes epoch ms or an ISO date-time');
  return n;
};

function print(opts: Common, w: Worker): void {
  console.log(opts.json ? JSON.stringify(w, null, 2) : workerLine(w));
}

function stateLine(s: QueueStateAnswer): string {
  if (!s.paused) return `${s.queue} resumed`;
  return `${s.queue} paused since ${new Date(s.pausedAt!).toISOString()}${s.reason ? `: ${s.reason}` : ''}`;
}

/** What `queue pause|resume --worker ID` prints: the worker's paused queues. */
function workerLine(w: Worker): string {
  return `${w.id}: ${w.pausedQueues.length === 0 ? 'no queue paused' : `paused ${w.pausedQueues.join(', ')}`}`;
}

export function registerQueueCommands(program: Command): void {
  const queue = program.command('queue').description('pause and resume queues at run time, everywhere or on one worker (admin)');
  const worker = (): Option => new Option('--worker <id>', 'on this worker only (kept across its reconnects); its other queues, and other workers, go on');
  withCommon(queue.command('pause <name>'))
    .description('pause a queue: its jobs are not handed out (by any coordinator) until it is resumed; running attempts finish')
    .option('--reason <text>', 'why, shown in the queue listing (not with --worker)')
    .addOption(worker())
    .action(async (name: string, opts: Common & { reason?: string; worker?: string }) => {
      if (opts.worker !== undefined) {
        if (opts.reason !== undefined) throw new InvalidArgumentError('--reason is for a whole queue, not with --worker');
        return print(opts, await clientFrom(opts).pauseWorkerQueue(opts.worker, name));
      }
      const state = await clientFrom(opts).pauseQueue(name, opts.reason);
      console.log(opts.json ? JSON.stringify(state, null, 2) : stateLine(state));
    });
  withCommon(queue.command('resume <name>'))
    .description('resume a paused queue: claimable again at once')
    .addOption(worker())
    .action(async (name: string, opts: Common & { worker?: string }) => {
      if (opts.worker !== undefined) return print(opts, await clientFrom(opts).resumeWorkerQueue(opts.worker, name));
      const state = await clientFrom(opts).resumeQueue(name);
      console.log(opts.json ? JSON.stringify(state, null, 2) : stateLine(state));
    });

  withCommon(program.command('history'))
    .description('queue history per minute or hour: submitted, succeeded, failed, lost, retried, cancelled, mean wait and run times')
    .option('--queue <name>', 'one queue (default: all)')
    .option('--step <step>', 'minute or hour', 'minute')
    .option('--from <time>', 'epoch ms or ISO date-time', epochMs)
    .option('--to <time>', 'epoch ms or ISO date-time (excluded)', epochMs)
    .action(async (opts: Common & { queue?: string; step: string; from?: number; to?: number }) => {
      if (opts.step !== 'minute' && opts.step !== 'hour') throw new InvalidArgumentError('--step takes minute or hour');
      const answer = await clientFrom(opts).history({
        step: opts.step,
        ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
        ...(opts.from !== undefined ? { from: opts.from } : {}),
        ...(opts.to !== undefined ? { to: opts.to } : {}),
      });
      console.log(opts.json ? JSON.stringify(answer, null, 2) : historyTable(answer));
    });
}

const mean = (h: HistoryPoint['wait']): string => {
  const n = h.buckets.reduce((a, b) => a + b, 0);
  return n === 0 ? '-' : `${Math.round(h.sumMs / n)}ms`;
};

export function historyTable(answer: HistoryAnswer): string {
  const header = ['AT', 'QUEUE', 'SUBMITTED', 'SUCCEEDED', 'FAILED', 'LOST', 'RETRIED', 'CANCELLED', 'WAIT', 'RUN'];
  const rows = answer.points.map((p) => [
    new Date(p.at).toISOString().slice(0, 16).replace('T', ' '),
    p.queue,
    ...(['submitted', 'succeeded', 'failed', 'lost', 'retried', 'cancelled'] as const).map((k) => String(p.counts[k])),
    mean(p.wait),
    mean(p.run),
  ]);
  if (rows.length === 0) return `no history in ${new Date(answer.from).toISOString()} .. ${new Date(answer.to).toISOString()}`;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
