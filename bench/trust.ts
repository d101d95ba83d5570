// `npm run bench:trust`: how the trust rules hold against colluders and
// cheats, in virtual time from fixed seeds, on the real store (SQLite in
// memory) and the real scheduler (src/sim/trust.ts). For each pool it reports
// wrong results accepted, jobs that ended NO_QUORUM, honest workers
// quarantined, bad workers quarantined and the most jobs one took part in
// before that, and attempts per job; then the bars of docs/trust.md.
//
// `--jobs N` sets the jobs per pool (default 10,000), `--seed S` the seed,
// `--only NAME` one pool. The table goes to stdout and to
// bench/results/trust-<date>-<host>.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runTrustScenario, type TrustOutcome, type TrustScenario } from '../src/sim/trust.ts';

const HONEST_MS = 10_000;
const FAST_MS = 1_000;
const SLOW_MS = 20_000;

/** The pools: each worker its own operator; colluders all give one wrong answer, cheats each their own. */
function pools(jobs: number, seed: number): TrustScenario[] {
  const base = { jobs, seed, replicas: 3, adaptive: false, cheats: { count: 0, runMs: FAST_MS } };
  return [
    { ...base, name: '6 workers, 2 fast colluders', honest: { count: 4, runMs: HONEST_MS }, colluders: { count: 2, runMs: FAST_MS } },
    { ...base, name: '9 workers, 2 fast colluders, 1 fast cheat', honest: { count: 6, runMs: HONEST_MS }, colluders: { count: 2, runMs: FAST_MS }, cheats: { count: 1, runMs: FAST_MS } },
    { ...base, name: '9 workers, 2 slow colluders, 1 slow cheat', honest: { count: 6, runMs: HONEST_MS }, colluders: { count: 2, runMs: SLOW_MS }, cheats: { count: 1, runMs: SLOW_MS } },
    { ...base, name: '12 workers, 3 colluders as fast as the rest', honest: { count: 9, runMs: HONEST_MS }, colluders: { count: 3, runMs: HONEST_MS } },
    { ...base, name: '12 workers, 3 fast colluders, 1 fast cheat', honest: { count: 8, runMs: HONEST_MS }, colluders: { count: 3, runMs: FAST_MS }, cheats: { count: 1, runMs: FAST_MS } },
    { ...base, name: 'adaptive, 9 workers, 2 fast colluders, 1 fast cheat', adaptive: true, honest: { count: 6, runMs: HONEST_MS }, colluders: { count: 2, runMs: FAST_MS }, cheats: { count: 1, runMs: FAST_MS } },
    { ...base, name: 'adaptive, 10 honest workers', adaptive: true, honest: { count: 10, runMs: HONEST_MS }, colluders: { count: 0, runMs: FAST_MS } },
  ];
}

/** The bars of docs/trust.md, for one pool's outcome. */
export function bars(o: TrustOutcome, s: TrustScenario): string[] {
  const out: string[] = [];
  const pool = s.honest.count + s.colluders.count + s.cheats.count;
  const underThird = s.colluders.count * 3 < pool;
  if (underThird && o.wrongAccepted > 0) out.push(`${o.wrongAccepted} wrong accepted (bar: 0)`);
  if (o.honestQuarantined > 0) out.push(`${o.honestQuarantined} honest quarantined (bar: 0)`);
  if (o.bad > o.badQuarantined) out.push(`${o.bad - o.badQuarantined} bad workers never quarantined`);
  if (o.worstJobsToQuarantine > 20) out.push(`a bad worker took part in ${o.worstJobsToQuarantine} jobs (bar: 20)`);
  if (s.adaptive && o.bad === 0 && o.attemptsPerJob > 1.3) out.push(`${o.attemptsPerJob.toFixed(2)} attempts per job (bar: 1.3)`);
  return out;
}

function table(rows: { s: TrustScenario; o: TrustOutcome; ms: number }[]): string {
  const head = '| pool | jobs | wrong accepted | NO_QUORUM | honest quarantined | bad quarantined | most jobs before quarantine | attempts per job | bars |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |';
  const lines = rows.map(({ s, o }) => {
    const b = bars(o, s);
    return `| ${s.name} | ${o.jobs} | ${o.wrongAccepted} | ${o.failed} | ${o.honestQuarantined} | ${o.badQuarantined} of ${o.bad} | ${o.bad === 0 ? '-' : o.worstJobsToQuarantine} | ${o.attemptsPerJob.toFixed(2)} | ${b.length === 0 ? 'met' : b.join('; ')} |`;
  });
  return [head, ...lines].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { jobs: { type: 'string', default: '10000' }, seed: { type: 'string', default: '1' }, only: { type: 'string' } } });
  const jobs = Number.parseInt(values.jobs!, 10);
  const seed = Number.parseInt(values.seed!, 10);
  const rows: { s: TrustScenario; o: TrustOutcome; ms: number }[] = [];
  for (const s of pools(jobs, seed).filter((p) => values.only === undefined || p.name.includes(values.only))) {
    const t0 = performance.now();
    const o = await runTrustScenario(s);
    const ms = performance.now() - t0;
    process.stderr.write(`${s.name}: ${o.wrongAccepted} wrong, ${o.failed} NO_QUORUM, ${(ms / 1000).toFixed(1)} s\n`);
    rows.push({ s, o, ms });
  }
  const report = `# Trust bench\n\nSeed ${seed}, ${jobs} jobs per pool, replicas 3, default trust policy; each worker its own operator; honest workers take ${HONEST_MS / 1000} s a job, fast bad ones ${FAST_MS / 1000} s, slow ones ${SLOW_MS / 1000} s (±20 %). Virtual time.\n\n${table(rows)}\n`;
  process.stdout.write(report);
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}trust-${new Date().toISOString().slice(0, 10)}-${hostname()}.md`, report);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
