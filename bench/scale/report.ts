// The scale report: every figure as JSON, and a markdown page for people.
import type { BacklogResult, BlockedOlderResult, ClaimProfile, ClaimRun, HistoryResult } from './claims.ts';
import type { Machine } from './machine.ts';
import type { IdleResult } from './idle.ts';
import type { RestartResult } from './restart.ts';
import { count, fmt } from './util.ts';
import { placementGrowth, renderPlacement, type PlacementReport } from './placement-report.ts';
import { renderSlots, slotsHeadline } from './slots-report.ts';
import type { SlotsResult } from './slots.ts';
import type { WorkersResult } from './workers.ts';

export interface RunInfo {
  date: string;
  smoke: boolean;
  sizes: number[];
  historySizes: number[];
  claims: number;
  warmup: number;
  profileClaims: number;
  unplaceable: number;
  restartReps: number;
  restSeconds: number;
  loadBudgetS: number;
  stores: { kind: string; setup: string }[];
  wallSeconds: number;
  loadAverageEnd1m: number;
  /** Set when the sources changed while the run went on (coordinators started later ran the newer code). */
  codeChanged: string | null;
}

/** Claim cost at the largest backlog over the smallest: 1 is flat. */
export interface Flatness {
  store: string;
  smallest: number;
  largest: number;
  /** Per maxJobs: mean and p50 at the largest backlog over the same at the smallest. */
  ratios: { maxJobs: number; meanRatio: number; p50Ratio: number; smallestMeanMs: number; largestMeanMs: number }[];
}

export interface ScaleReport {
  run: RunInfo;
  machine: Machine;
  flatness: Flatness[];
  backlog: BacklogResult[];
  blockedOlder: BlockedOlderResult[];
  history: HistoryResult[];
  /** Claim cost with the most finished jobs ahead over the same with the fewest. */
  historyFlatness: Flatness[];
  /** A coordinator at rest on each backlog (and on an almost empty store). */
  rest: IdleResult[];
  restart: RestartResult[];
  workers: WorkersResult | null;
  /** The same drain with fewer workers, for comparison. */
  workersBaseline: WorkersResult | null;
  /** Placement cost per job as the pool grows, and contention between coordinators (placement.ts). */
  placement: PlacementReport;
  /** Idle slots with a backlog: utilisation and a freed slot's wait (slots.ts). */
  slots: SlotsResult | null;
}

export function flatness(rows: { store: string; size: number; runs: ClaimRun[] }[]): Flatness[] {
  const out: Flatness[] = [];
  for (const store of [...new Set(rows.map((r) => r.store))]) {
    const mine = rows.filter((r) => r.store === store).sort((a, b) => a.size - b.size);
    const small = mine[0];
    const large = mine[mine.length - 1];
    if (!small || !large || mine.length < 2) continue;
    out.push({
      store,
      smallest: small.size,
      largest: large.size,
      ratios: small.runs.map((s) => {
        const l = large.runs.find((r) => r.maxJobs === s.maxJobs)!;
        return {
          maxJobs: s.maxJobs,
          meanRatio: l.claim.meanMs / s.claim.meanMs,
          p50Ratio: l.claim.p50Ms / s.claim.p50Ms,
          smallestMeanMs: s.claim.meanMs,
          largestMeanMs: l.claim.meanMs,
        };
      }),
    });
  }
  return out;
}

const storeName = (kind: string): string => (kind === 'sqlite' ? 'SQLite' : kind === 'postgres' ? 'PostgreSQL' : kind);
const ms = (v: number | null | undefined): string => fmt(v);
const s = (vMs: number): string => `${(vMs / 1000).toFixed(vMs >= 100_000 ? 0 : 1)} s`;
const triple = (r: ClaimRun): string => `${ms(r.claim.meanMs)} / ${ms(r.claim.p50Ms)} / ${ms(r.claim.p99Ms)}`;
const ratio = (v: number): string => `${v.toFixed(2)}×`;

export function renderMarkdown(report: ScaleReport): string {
  const { run, machine } = report;
  const L: string[] = [];
  L.push(`# Gaffer scale run: ${run.date.slice(0, 10)} on ${machine.host}${run.smoke ? ' (smoke run: tiny sizes, the figures mean nothing)' : ''}`, '');
  L.push('## Machine', '', '| | |', '| --- | --- |');
  L.push(`| CPU | ${machine.cpu}, ${machine.cores} cores |`);
  L.push(`| Memory | ${machine.memoryGiB} GiB |`);
  L.push(`| OS | ${machine.os} |`);
  L.push(`| Node.js | ${machine.node} |`);
  L.push(`| SQLite | ${machine.sqlite} (node:sqlite) |`);
  if (machine.postgres) L.push(`| PostgreSQL | ${machine.postgres} |`);
  L.push(`| Open files (ulimit -n) | soft ${machine.openFilesSoft}, hard ${machine.openFilesHard} |`);
  L.push(`| Gaffer | ${machine.gaffer} |`);
  L.push(`| Load average (1 min) | ${machine.loadAverage1m.toFixed(2)} at the start, ${run.loadAverageEnd1m.toFixed(2)} at the end |`);
  L.push(`| Whole run | ${s(run.wallSeconds * 1000)} |`, '');
  if (run.codeChanged) L.push(`**Warning: the sources changed during the run** (${run.codeChanged}): the figures mix two versions of the code.`, '');
  L.push('Stores:', '');
  for (const st of run.stores) L.push(`- ${storeName(st.kind)}: ${st.setup}.`);
  L.push('');

  L.push('## Headline', '');
  for (const g of placementGrowth(report.placement.placement)) {
    L.push(`- Placement cost per job, ${storeName(g.store)}, ${g.pool}, ${count(g.fromWorkers)} → ${count(g.toWorkers)} workers: **${ratio(g.ratio)}** (bar 1.5×).`);
  }
  for (const f of report.flatness) {
    const parts = f.ratios.map((r) => `maxJobs ${r.maxJobs}: ${ms(r.smallestMeanMs)} → ${ms(r.largestMeanMs)} ms, **${ratio(r.meanRatio)}** (p50 ${ratio(r.p50Ratio)})`);
    L.push(`- Claim cost, ${storeName(f.store)}, backlog ${count(f.smallest)} → ${count(f.largest)}: ${parts.join('; ')}. Flat is 1×.`);
  }
  for (const f of report.historyFlatness) {
    const parts = f.ratios.map((r) => `maxJobs ${r.maxJobs}: ${ms(r.smallestMeanMs)} → ${ms(r.largestMeanMs)} ms, **${ratio(r.meanRatio)}**`);
    L.push(`- Claim cost, ${storeName(f.store)}, finished jobs ahead of the backlog ${count(f.smallest)} → ${count(f.largest)}: ${parts.join('; ')}.`);
  }
  for (const kind of [...new Set(report.rest.map((r) => r.store))]) {
    const rows = report.rest.filter((r) => r.store === kind).sort((a, b) => a.queued - b.queued);
    const least = rows[0]!;
    const most = rows[rows.length - 1]!;
    if (rows.length < 2) continue;
    L.push(
      `- A ${storeName(kind)} coordinator at rest (no worker): CPU ${fmt(least.usage.cpuPercent, 1)}% of a core with ${count(least.queued)} jobs queued, ` +
        `**${fmt(most.usage.cpuPercent, 1)}%** with ${count(most.queued)}; a request waits up to ${ms(least.healthz.maxMs)} ms, then **${ms(most.healthz.maxMs)} ms** (/healthz, max).`,
    );
  }
  const w = report.workers;
  if (w) {
    L.push(
      `- ${count(w.workers)} workers on one coordinator (${storeName(w.store)}): connected in ${s(w.connectMs)}; ` +
        `coordinator CPU ${fmt(w.idle.cpuPercent, 1)}% of a core idle (heartbeats), ${fmt(w.drain.cpuPercent, 1)}% draining; ` +
        `RSS up to ${fmt(w.drain.rssMaxMiB > w.idle.rssMaxMiB ? w.drain.rssMaxMiB : w.idle.rssMaxMiB, 0)} MiB; ` +
        `drained ${fmt(w.drain.jobsPerS, 0)} jobs/s${report.workersBaseline ? ` (${fmt(report.workersBaseline.drain.jobsPerS, 0)} with ${count(report.workersBaseline.workers)} workers)` : ''}; ` +
        `all stayed connected: **${w.stayedConnected ? 'yes' : 'no'}**.`,
    );
  }
  if (report.slots) L.push(slotsHeadline(report.slots));
  for (const r of report.restart.filter((x) => x.jobs > run.restartReps)) {
    L.push(`- Restart of ${storeName(r.store)} with ${count(r.jobs)} jobs in the store: /readyz after ${ms(r.readyMedianMs)} ms, first attempt handed out after ${ms(r.firstAssignMedianMs)} ms (medians of ${r.samples.length}).`);
  }
  L.push('');

  L.push('## 1. Claim cost against the backlog', '');
  L.push(
    `Per store and backlog size: a fresh store; N queued no-op jobs (payload \`{"i": n}\`, queue \`scale\`, priority 0) written through \`store.submit\` ` +
      `in batches of 1000 (one transaction each; the load time below), then PostgreSQL \`ANALYZE\`d. Four workers of 16 slots each ` +
      `are registered. Then ${run.claims} claims of at most 1 job, and ${run.claims} of at most 64 (${run.warmup} untimed warm-up claims before each), ` +
      'straight on the store in the bench process with the scheduler\'s place function, as the coordinator claims. Only the `store.claim` call is timed. ' +
      'Between claims, untimed: every attempt handed out is completed, and as many new jobs are submitted, so the backlog keeps its size ' +
      '(the finished jobs pile up at the head of the queue meanwhile: the same number at every size). Times are per claim; ' +
      '"per job" is the total claim time over the jobs handed out. The drift column is the mean of the first tenth of the 64-job claims, then of the last tenth.',
    '',
  );
  for (const kind of [...new Set(report.backlog.map((b) => b.store))]) {
    const rows = report.backlog.filter((b) => b.store === kind);
    L.push(`### ${storeName(kind)}`, '');
    L.push('| backlog | load | load rate (jobs/s) | ANALYZE | maxJobs 1: mean / p50 / p99 (ms) | maxJobs 64: mean / p50 / p99 (ms) | jobs per 64-claim | per job (ms) | drift (ms) |');
    L.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const b of rows) {
      const one = b.runs.find((r) => r.maxJobs === 1)!;
      const many = b.runs.find((r) => r.maxJobs !== 1)!;
      const size = b.load.truncated ? `${count(b.backlog)} (of ${count(b.load.wanted)}: load budget)` : count(b.backlog);
      L.push(
        `| ${size} | ${s(b.load.ms)} | ${fmt(b.load.jobsPerS, 0)} | ${b.analyzeMs === null ? '–' : `${fmt(b.analyzeMs, 0)} ms`} | ${triple(one)} | ${triple(many)} | ` +
          `${fmt(many.jobsPerClaim, 1)} | ${ms(many.perJobMs)} | ${ms(many.firstTenthMeanMs)} → ${ms(many.lastTenthMeanMs)} |`,
      );
    }
    const f = report.flatness.find((x) => x.store === kind);
    if (f) L.push('', `Largest over smallest backlog: ${f.ratios.map((r) => `maxJobs ${r.maxJobs} mean ${ratio(r.meanRatio)}, p50 ${ratio(r.p50Ratio)}`).join('; ')}.`);
    L.push('');
  }

  const blocked = report.backlog.filter((b) => b.blockedByPriority !== null);
  if (blocked.length > 0 || report.blockedOlder.length > 0) {
    L.push('### A head of the queue no worker can take', '');
    L.push(
      `Jobs requiring a label no worker has (\`requires.labels: {"pool": "nowhere"}\`). Ahead by priority: after the measurements above, ${count(run.unplaceable)} such jobs of priority 1 ` +
        `(newer than the backlog, ahead of it in priority order). Older: on a fresh store, ${count(run.unplaceable)} such jobs of priority 0 submitted before the backlog ` +
        '(ahead of it in both priority and age order). Claims of at most 64, with completions and replacements between them as above.',
      '',
    );
    L.push('| store | backlog | unplaceable jobs | where | claim mean / p50 / p99 (ms) | jobs per claim (fewest) |');
    L.push('| --- | ---: | ---: | --- | ---: | ---: |');
    for (const b of blocked) {
      const r = b.blockedByPriority!;
      L.push(`| ${storeName(b.store)} | ${count(b.backlog)} | ${count(r.unplaceable)} | ahead by priority, newer | ${triple(r)} | ${fmt(r.jobsPerClaim, 1)} (${r.fewestJobs}) |`);
    }
    for (const b of report.blockedOlder) {
      L.push(`| ${storeName(b.store)} | ${count(b.backlog)} | ${count(b.unplaceable)} | older, same priority | ${triple(b.run)} | ${fmt(b.run.jobsPerClaim, 1)} (${b.run.fewestJobs}) |`);
    }
    L.push('');
  }

  if (report.history.length > 0) {
    L.push('### Finished jobs ahead of the backlog', '');
    L.push(
      'A store keeps every finished job. Here, on a fresh store per row: F jobs of the queue that finished before the backlog was submitted, then the backlog ' +
        '(queued jobs), then PostgreSQL `ANALYZE`d and the same claims as above. The finished jobs are written through `store.submit` too: each depends ' +
        'on one cancelled parent, so submit writes it `cancelled` at once (want 0, finished_at set): to every index the same row as a job that ran and finished, ' +
        'made at submit speed instead of a claim and a completion per job. The last row of each store has as many queued jobs as finished ones.',
      '',
    );
    L.push('| store | finished ahead | backlog | load of the finished | maxJobs 1: mean / p50 / p99 (ms) | maxJobs 64: mean / p50 / p99 (ms) | per job (ms) | drift (ms) |');
    L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const h of report.history) {
      const one = h.runs.find((r) => r.maxJobs === 1)!;
      const many = h.runs.find((r) => r.maxJobs !== 1)!;
      L.push(
        `| ${storeName(h.store)} | ${count(h.finished)} | ${count(h.backlog)} | ${s(h.load.ms)} | ${triple(one)} | ${triple(many)} | ${ms(many.perJobMs)} | ` +
          `${ms(many.firstTenthMeanMs)} → ${ms(many.lastTenthMeanMs)} |`,
      );
    }
    L.push('');
  }

  const profiled = [
    ...report.backlog.filter((b) => b.profile).map((b) => ({ title: `${storeName(b.store)}, backlog ${count(b.backlog)}`, p: b.profile! })),
    ...report.history.filter((h) => h.profile).map((h) => ({ title: `${storeName(h.store)}, ${count(h.finished)} finished ahead of ${count(h.backlog)}`, p: h.profile! })),
  ];
  if (profiled.length > 0) {
    L.push("### Where a claim's time goes", '');
    L.push(
      'A few more 64-job claims with every SQL statement the store runs timed (the timing wraps the store\'s database handle, so these claims run a little slower ' +
        'than the ones above). Per claim: the statements that took the most, and the rest ("other": the place function and other JavaScript, and for ' +
        'PostgreSQL BEGIN, COMMIT and the pool; for SQLite BEGIN and COMMIT are listed).',
      '',
    );
    for (const { title, p } of profiled) {
      L.push(`**${title}**: ${ms(p.claimMeanMs)} ms per claim over ${p.claims} claims.`, '');
      L.push('| ms per claim | share | calls per claim | statement |', '| ---: | ---: | ---: | --- |');
      for (const st of p.statements.slice(0, 5)) L.push(`| ${ms(st.msPerClaim)} | ${(st.share * 100).toFixed(0)}% | ${fmt(st.callsPerClaim, 1)} | \`${abbreviate(st.sql, 170)}\` |`);
      L.push(`| ${ms(p.otherMsPerClaim)} | ${((p.otherMsPerClaim / p.claimMeanMs) * 100).toFixed(0)}% | | other |`, '');
    }
    L.push('### Plans of the candidate reads', '');
    L.push('At the largest backlog and with the most finished jobs ahead, right after the profiled claims, with the parameters of the last claim. Every plan is in the JSON.', '');
    const largest = (rows: { store: string; p: ClaimProfile | null; n: number; title: string }[]): typeof rows =>
      [...new Set(rows.map((r) => r.store))].map((st) => rows.filter((r) => r.store === st && r.p).sort((a, b) => b.n - a.n)[0]!).filter(Boolean);
    const shown = [
      ...largest(report.backlog.map((b) => ({ store: b.store, p: b.profile, n: b.backlog, title: `${storeName(b.store)}, backlog ${count(b.backlog)}` }))),
      ...largest(report.history.map((h) => ({ store: h.store, p: h.profile, n: h.finished, title: `${storeName(h.store)}, ${count(h.finished)} finished ahead` }))),
    ];
    for (const { title, p } of shown) {
      for (const plan of p!.plans) {
        L.push(`**${title}**: \`${abbreviate(plan.sql, 220)}\``, '');
        const cache = p!.planCache.find((c) => c.sql === plan.sql);
        if (cache) L.push(`On the connection of the last profiled claim, the store's prepared statement had been planned ${cache.customPlans} times custom, ${cache.genericPlans} times generic.`, '');
        for (const x of plan.plans) L.push(`${x.label}:`, '', '```', ...x.lines, '```', '');
      }
    }
  }

  if (report.rest.length > 0) {
    L.push('## 2. A coordinator at rest on the backlog', '');
    L.push(
      `\`gaffer serve\` as a child process on each store of section 1 once its claims were measured (and on an almost empty store), with no worker connected: ` +
        `nothing to dispatch, but its timers run (sweepers every 250 ms; on PostgreSQL also a poll every second). Over ${s(run.restSeconds * 1000)}, after a second to settle: ` +
        'its CPU (user + system from /proc/PID/stat, as a share of one core) and resident memory, and `/healthz` round trips from the bench every 20 ms. ' +
        '/healthz touches no store: a slow answer means the event loop was busy (SQLite runs synchronously on it).',
      '',
    );
    L.push('| store | jobs (queued) | CPU | RSS max (MiB) | /healthz p50 / p99 / max (ms) |');
    L.push('| --- | ---: | ---: | ---: | ---: |');
    for (const r of report.rest) {
      L.push(`| ${storeName(r.store)} | ${count(r.jobs)} (${count(r.queued)}) | ${fmt(r.usage.cpuPercent, 1)}% | ${fmt(r.usage.rssMaxMiB, 0)} | ${ms(r.healthz.p50Ms)} / ${ms(r.healthz.p99Ms)} / ${ms(r.healthz.maxMs)} |`);
    }
    L.push('');
  }

  if (w) {
    const b = report.workersBaseline;
    L.push(`## 3. ${count(w.workers)} workers on one coordinator`, '');
    L.push(
      `\`gaffer serve\` as a child process on a fresh SQLite file (synchronous=FULL, its default), no tokens, on 127.0.0.1. The bench process opens ${count(w.workers)} ` +
        `WebSockets to it (${w.connectConcurrency} connecting at a time), each a simulated worker speaking the raw protocol: hello with one slot of queue \`scale\`, ` +
        `a heartbeat every ${w.heartbeatIntervalMs} ms as welcome asks (from a random phase), and a complete with a null result as soon as an attempt is assigned. ` +
        'CPU is the coordinator\'s user plus system time from /proc/PID/stat over the window, as a share of one core; RSS is VmRSS from /proc/PID/status, sampled every 250 ms. ' +
        `Idle: ${s(w.idle.windowMs)} with every worker connected and heartbeating, nothing to run. Draining: ${count(w.drain.jobs)} no-op jobs submitted over HTTP ` +
        '(`POST /v1/jobs/batch`, 1000 a batch), from the first submit to the last ack. The bench process (the workers) shares the machine\'s cores with the coordinator: its own CPU is listed too.',
      '',
    );
    if (b) L.push(`The same run with ${count(b.workers)} workers first (a shorter idle window), for comparison.`, '');
    const runs = b ? [w, b] : [w];
    const row = (label: string, f: (x: WorkersResult) => string): void => void L.push(`| ${label} | ${runs.map(f).join(' | ')} |`);
    L.push(`| | ${runs.map((x) => `${count(x.workers)} workers`).join(' | ')} |`, `| --- | ${runs.map(() => '---').join(' | ')} |`);
    row('all connected in', (x) => s(x.connectMs));
    row('open files', (x) => `limits: bench ${x.openFiles.benchSoft}, coordinator ${x.openFiles.coordinatorSoft}; the coordinator had ${count(x.openFiles.coordinatorOpenPeak)} open`);
    row('idle: coordinator CPU', (x) => `${fmt(x.idle.cpuPercent, 1)}% of one core (${fmt(x.idle.heartbeatsPerS, 0)} heartbeats/s, over ${s(x.idle.windowMs)})`);
    row('idle: coordinator RSS', (x) => `mean ${fmt(x.idle.rssMeanMiB, 0)} MiB, max ${fmt(x.idle.rssMaxMiB, 0)} MiB`);
    row('idle: bench process CPU', (x) => `${fmt(x.idle.benchCpuPercent, 1)}%`);
    row('draining: jobs/s', (x) => `${fmt(x.drain.jobsPerS, 0)} (${count(x.drain.jobs)} jobs in ${s(x.drain.ms)}, over ${count(x.drain.workersUsed)} distinct workers)`);
    row('draining: coordinator CPU', (x) => `${fmt(x.drain.cpuPercent, 1)}% of one core`);
    row('draining: coordinator RSS', (x) => `mean ${fmt(x.drain.rssMeanMiB, 0)} MiB, max ${fmt(x.drain.rssMaxMiB, 0)} MiB`);
    row('draining: bench process CPU', (x) => `${fmt(x.drain.benchCpuPercent, 1)}%`);
    row('stayed connected', (x) => `${x.stayedConnected ? 'yes' : 'no'}: ${count(x.openAtEnd)} sockets open at the end, ${count(x.coordinatorSaysConnected)} listed connected, closed by the coordinator: ${JSON.stringify(x.tally.unexpectedCloses)}`);
    row('refused reports, error frames', (x) => `${JSON.stringify(x.tally.refused)}, ${JSON.stringify(x.tally.errors)}`);
    L.push('');
  }

  if (report.restart.length > 0) {
    L.push('## 4. Coordinator restart', '');
    L.push(
      '`gaffer serve` started as a child process on a store that already holds its jobs (the store of the largest backlog above, closed by the bench; and an ' +
        `almost empty one for comparison), ${run.restartReps} times each. Timed from the spawn: until \`/readyz\` answers 200 (polled every 5 ms), and until a worker, ` +
        'which connects and says hello as soon as /readyz answered, receives its first attempt (it then drains, completes it and leaves). Each start includes Node.js starting and loading Gaffer\'s modules; ' +
        'the operating system\'s page cache holds the database files from the run before (a warm restart). PostgreSQL itself keeps running: only the coordinator restarts.',
      '',
    );
    L.push('| store | jobs in the store (queued) | /readyz (ms) | first attempt handed out (ms) | hello to first attempt (ms) | stop (ms) |');
    L.push('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const r of report.restart) {
      const cell = (f: (x: (typeof r.samples)[number]) => number): string => r.samples.map((x) => fmt(f(x), 0)).join(', ');
      L.push(`| ${storeName(r.store)} | ${count(r.jobs)} (${count(r.queued)}) | ${cell((x) => x.readyMs)} | ${cell((x) => x.firstAssignMs)} | ${cell((x) => x.helloToAssignMs)} | ${cell((x) => x.stopMs)} |`);
    }
    L.push('');
  }
  L.push(...renderPlacement(report.placement));
  L.push(...renderSlots(report.slots));
  return L.join('\n');
}

/** A long statement as its beginning and its end (where a candidate read's ORDER BY tells it apart). */
function abbreviate(sql: string, max: number): string {
  const t = sql.replaceAll('`', "'").replaceAll('|', '\\|');
  if (t.length <= max) return t;
  const head = Math.floor(max * 0.4);
  return `${t.slice(0, head)} … ${t.slice(t.length - (max - head - 3))}`;
}
