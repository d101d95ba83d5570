// `gaffer advise`: the worker-ratio advice (GET /v1/advice) as a table, or as
// JSON with --json. docs/advisor.md explains each figure.
import { InvalidArgumentError, type Command } from 'commander';
import type { AdviceReport } from '../coordinator/advice.ts';
import { clientFrom, tokenOption, urlOption } from './common.ts';

interface AdviseOptions {
  url?: string;
  token?: string;
  json?: boolean;
  windowMs?: number;
}

const HEADER = ['QUEUE', 'STATUS', 'MEAN', 'SLOTS', 'NEEDED', 'BALANCE', 'SHORT', 'CAP/H', 'IN/H', 'UTIL', 'FED BY'];

const positiveWhole = (v: string): number => {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('takes a whole number of milliseconds');
  return n;
};

export function registerAdvise(program: Command): void {
  program
    .command('advise')
    .description('worker-ratio advice: what each phase sustains, the bottleneck, the slots that balance the pipeline, and which workers to add')
    .addOption(urlOption())
    .addOption(tokenOption())
    .option('--window-ms <ms>', 'how far back to look (the server default when left out: adviceWindowMs)', positiveWhole)
    .option('--json', 'print JSON for scripts')
    .action(async (opts: AdviseOptions) => {
      const advice = await clientFrom(opts).advice(opts.windowMs === undefined ? {} : { windowMs: opts.windowMs });
      console.log(opts.json ? JSON.stringify(advice, null, 2) : adviceTable(advice));
    });
}

const num = (v: number | null, digits = 2): string => (v === null ? '-' : String(Math.round(v * 10 ** digits) / 10 ** digits));

function duration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)}m`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}

const slotsOf = (queues: Record<string, number>): string => `{${Object.entries(queues).map(([q, n]) => `${q} ${n}`).join(', ')}}`;

function table(rows: string[][]): string[] {
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i <= 1 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(HEADER), ...rows.map(line)];
}

function summary(a: AdviceReport): string[] {
  if (a.bottleneck === null) return ['no arrivals in the window: nothing to balance'];
  const lines = [`bottleneck ${a.bottleneck}: headroom ${num(a.headroom)} (every arrival rate may grow by this factor before it falls behind)`];
  if (a.add.length === 0) lines.push(a.headroom !== null && a.headroom >= 1 ? 'no workers to add: the pipeline keeps up' : 'no connected kind of worker serves the bottleneck');
  for (const k of a.add) {
    const kind = a.kinds.find((x) => slotsOf(x.queues) === slotsOf(k.queues));
    lines.push(`add ${k.workers} x ${slotsOf(k.queues)}${kind && kind.examples.length ? ` (like ${kind.examples.join(', ')})` : ''}`);
  }
  if (a.add.length > 0) lines.push(`headroom after adding: ${num(a.headroomAfterAdd)}`);
  return lines;
}

/** The advice for people: a line per phase, then the bottleneck and the workers to add. */
export function adviceTable(a: AdviceReport): string {
  if (a.phases.length === 0) return 'no queues';
  const rows = a.phases.map((p) => [
    p.queue,
    p.status,
    duration(p.runTimeMeanMs),
    String(p.slots),
    num(p.slotsNeeded),
    p.slotsToBalance === null ? '-' : String(p.slotsToBalance),
    p.slotsShort === null ? '-' : String(p.slotsShort),
    num(p.capacityPerHour),
    num(p.arrivalPerHour),
    num(p.utilisation),
    p.fedBy.join(', ') || '-',
  ]);
  const truncated = a.edgesTruncated ? ' (edges cut at their bound)' : '';
  return [...table(rows), '', ...summary(a), `over the last ${duration(a.windowMs)}; workers counted: ${a.workersCounted}${truncated}`].join('\n');
}
