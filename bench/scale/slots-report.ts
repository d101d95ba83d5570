// The idle-slots section of the scale report (slots.ts).
import { fmt, count } from './util.ts';
import type { SlotsResult } from './slots.ts';

/** The bars of the issue "Performance": utilisation and the wait of a freed slot. */
export const SLOTS_BARS = { utilisationMin: 0.98, slotWaitP99MaxMs: 10 } as const;

export function slotsHeadline(r: SlotsResult): string {
  return (
    `- Idle slots, ${count(r.workers)} workers of ${r.slotsPerWorker} slots on ${count(r.backlogQueued)} queued jobs of ${r.jobMs} ms: utilisation **${fmt(r.utilisation * 100, 1)}%** ` +
    `(bar ${SLOTS_BARS.utilisationMin * 100}%), a freed slot's next assignment after p50 ${fmt(r.slotWait.p50Ms, 1)} ms, **p99 ${fmt(r.slotWait.p99Ms, 1)} ms** (bar under ${SLOTS_BARS.slotWaitP99MaxMs} ms); ` +
    `coordinator RSS up to **${fmt(Math.max(r.rest.rssMaxMiB, r.running.rssMaxMiB), 0)} MiB**.`
  );
}

export function renderSlots(r: SlotsResult | null): string[] {
  if (!r) return [];
  const L: string[] = [];
  L.push(`## Idle slots: ${count(r.workers)} workers of ${r.slotsPerWorker} slots, a backlog of ${count(r.backlogQueued)}`, '');
  L.push(
    `${count(r.backlogQueued)} no-op jobs are written to a fresh SQLite file through \`store.submit\` (${(r.loadMs / 1000).toFixed(1)} s), then \`gaffer serve\` (synchronous=FULL) starts on it ` +
      `and rests ${fmt(r.rest.windowMs / 1000, 0)} s with no worker. The bench process then opens ${count(r.workers)} WebSockets, each a simulated worker with ${r.slotsPerWorker} slots whose ` +
      `every attempt "runs" ${r.jobMs} ms (a timer) before its complete is sent. After a warm-up, over a window of ${fmt(r.windowMs / 1000, 1)} s: utilisation is the slots' busy time ` +
      '(from an assignment arriving to its complete being sent) over slots times the window; a slot\'s wait is from its complete being sent to the next assignment arriving at its worker, ' +
      'for every slot that freed in the window, however late its assignment came (one still waiting 2 s after the window counts with what it had waited by then). All of it is read at the workers, so it includes both directions of the socket and the result\'s commit before the slot is claimed again.',
    '',
  );
  L.push('| figure | measured |', '| --- | ---: |');
  L.push(`| slot utilisation (bar ${SLOTS_BARS.utilisationMin * 100}%) | ${fmt(r.utilisation * 100, 1)}% |`);
  L.push(`| jobs the slots could run / jobs completed, per second | ${fmt(r.neededJobsPerS, 0)} / ${fmt(r.completedJobsPerS, 0)} |`);
  L.push(`| freed slot to next assignment: p50 / p99 / max (ms; bar p99 under ${SLOTS_BARS.slotWaitP99MaxMs}) | ${fmt(r.slotWait.p50Ms, 1)} / ${fmt(r.slotWait.p99Ms, 1)} / ${fmt(r.slotWait.maxMs, 1)} (${count(r.slotWait.counted)} freed slots) |`);
  L.push(`| coordinator at rest on the backlog: CPU, RSS max | ${fmt(r.rest.cpuPercent, 1)}%, ${fmt(r.rest.rssMaxMiB, 0)} MiB |`);
  L.push(`| coordinator while the workers run: CPU, RSS mean / max | ${fmt(r.running.cpuPercent, 1)}%, ${fmt(r.running.rssMeanMiB, 0)} / ${fmt(r.running.rssMaxMiB, 0)} MiB |`);
  L.push(`| bench process (the workers) CPU | ${fmt(r.running.benchCpuPercent, 1)}% |`);
  L.push(`| workers connected in | ${fmt(r.connectMs / 1000, 2)} s |`);
  L.push(`| refused reports, error frames, closes by the coordinator | ${JSON.stringify(r.tally.refused)}, ${JSON.stringify(r.tally.errors)}, ${JSON.stringify(r.tally.unexpectedCloses)} |`);
  L.push('');
  return L;
}
