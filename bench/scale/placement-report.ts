// The placement and contention sections of the scale report (placement.ts).
import type { ContentionRun, PlacementRun } from './placement.ts';
import { count } from './util.ts';

export interface PlacementReport {
  placement: PlacementRun[];
  contention: ContentionRun[];
}

/** Cost per job at the largest pool over the smallest, per store and pool (the bar: within 1.5x). */
export function placementGrowth(runs: readonly PlacementRun[]): { store: string; pool: string; fromWorkers: number; toWorkers: number; ratio: number; idleRatio: number | null }[] {
  const out = [];
  for (const key of new Set(runs.map((r) => `${r.store}/${r.pool}`))) {
    const rows = runs.filter((r) => `${r.store}/${r.pool}` === key).sort((a, b) => a.workers - b.workers);
    if (rows.length < 2) continue;
    const a = rows[0]!;
    const b = rows[rows.length - 1]!;
    const idleRatio = a.idleMsPerJob !== null && b.idleMsPerJob !== null ? b.idleMsPerJob / a.idleMsPerJob : null;
    out.push({ store: a.store, pool: a.pool, fromWorkers: a.workers, toWorkers: b.workers, ratio: b.msPerJob / a.msPerJob, idleRatio });
  }
  return out;
}

export function renderPlacement(r: PlacementReport): string[] {
  if (r.placement.length === 0 && r.contention.length === 0) return [];
  const L: string[] = ['## Placement as the pool grows', ''];
  L.push(
    'Simulated workers (store records, ' +
      'no sockets) of 2 slots, all full, a backlog waiting; each round ends 32 attempts at random workers and one dispatch pass refills them, ' +
      'through the coordinator\'s own Dispatcher and OpenSlots. `open-slots`: claims for the workers that may have a free slot, at most 256 per claim ' +
      '(the coordinator now); `every-worker`: every attached worker in every claim (before). Idle pool: each job submitted alone to a pool with nothing running.',
    '',
  );
  for (const g of placementGrowth(r.placement)) {
    const idle = g.idleRatio === null ? '' : `; idle pool **${g.idleRatio.toFixed(2)}×**`;
    L.push(`- ${g.store}, ${g.pool}: cost per job at ${count(g.toWorkers)} workers over ${count(g.fromWorkers)}: **${g.ratio.toFixed(2)}×**${idle} (bar: 1.5×).`);
  }
  L.push('', '| store | workers | pool | attempts placed | claims | store ms per job | idle pool ms per job |', '| --- | ---: | --- | ---: | ---: | ---: | ---: |');
  for (const p of r.placement) {
    L.push(`| ${p.store} | ${count(p.workers)} | ${p.pool} | ${count(p.placed)} | ${count(p.claims)} | ${p.msPerJob.toFixed(3)} | ${p.idleMsPerJob === null ? '-' : p.idleMsPerJob.toFixed(3)} |`);
  }
  if (r.contention.length > 0) {
    L.push('', '### Claim contention, several coordinators on one PostgreSQL database', '');
    L.push(
      'Each coordinator its own connection pool and its part of the workers, all claiming at once in the same steady state. ' +
        'Shares on: each claims its own share of the ready jobs first (weighted rendezvous over 1,024 shares); off: all read the same head of the queue.',
      '',
    );
    L.push('| coordinators | shares | workers | attempts placed | claims | wall ms per job | claim p50 ms | claim p99 ms | placed outside own share | claims that placed nothing |');
    L.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const c of r.contention) {
      L.push(
        `| ${c.coordinators} | ${c.shares ? 'on' : 'off'} | ${count(c.workers)} | ${count(c.placed)} | ${count(c.claims)} | ${c.wallMsPerJob.toFixed(3)} | ${c.claimP50Ms.toFixed(2)} | ${c.claimP99Ms.toFixed(2)} | ${(100 * c.outsideShareFraction).toFixed(1)}% | ${count(c.emptyClaims)} |`,
      );
    }
  }
  L.push('');
  return L;
}
