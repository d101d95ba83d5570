// How the CLI shows jobs to a person: `gaffer jobs` as a table under a
// header, `gaffer job ID` as the job's fields followed by its attempts, each
// with the worker's name, its state, its times and why it ended (a failure's
// error, a rejected result's reason and score).
import { LIMITS } from '../types/limits.ts';
import type { Attempt, Job } from '../types/model.ts';

/** What a job is beyond a client's own work: a reliability challenge, a verification job, or backlog filler. */
export function jobKind(j: Job): string {
  if (j.pinnedWorkerId !== null) return 'challenge';
  if (j.verifies !== null) return 'verifier';
  if (j.filler) return 'filler';
  return '-';
}

/** A time as a person reads it in a table: `2026-12-03 13:42:57` (UTC). */
export function shortTime(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

/** A duration for a table cell: 850ms, 12.3s, 4.5m, 2.0h. */
export function shortDuration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)}m`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}

/** Rows under a header, columns padded to their widest cell (numeric ones to the right); the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], numeric: ReadonlySet<number> = new Set()): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

const JOBS_HEADER = ['ID', 'QUEUE', 'STATE', 'PRIORITY', 'ATTEMPTS', 'KIND', 'CREATED'];

export function jobsTable(jobs: readonly Job[], nextCursor: string | null): string {
  if (jobs.length === 0) return 'no jobs';
  const rows = jobs.map((j) => [j.id, j.queue, j.state, String(j.priority), String(j.attempts), jobKind(j), shortTime(j.createdAt)]);
  const lines = table(JOBS_HEADER, rows, new Set([3, 4]));
  if (nextCursor) lines.push(`next page: --cursor ${nextCursor}`);
  return lines.join('\n');
}

export function jobFields(j: Job): string[] {
  const kind = jobKind(j);
  const lines = [
    `id         ${j.id}`,
    `queue      ${j.queue}`,
    `state      ${j.state}`,
    `priority   ${j.priority}${kind === '-' ? '' : ` (${kind}${j.pinnedWorkerId ? ` of worker ${j.pinnedWorkerId}` : ''}${j.verifies ? ` of job ${j.verifies.jobId}` : ''})`}`,
    `attempts   ${j.attempts} (failures ${j.failures} of ${j.maxAttempts})`,
    `created    ${shortTime(j.createdAt)}`,
    `finished   ${shortTime(j.finishedAt)}`,
  ];
  if (j.replicas > 1) {
    const how = `quorum ${j.quorum}, margin ${j.margin}, distinct ${j.distinct}${j.adaptive ? ', adaptive' : ''}${j.solo ? ', this round alone' : ''}`;
    lines.push(`replicas   ${j.replicas} (${how})`);
  }
  if (j.lost > 0) lines.push(`lost by    ${j.lost} silent workers (at most ${LIMITS.jobLostAttemptsMax})`);
  if (j.verify) lines.push(`verify     ${j.verify.mode === 'trace' ? `trace, tolerance ${j.verify.tolerance}` : `queue ${j.verify.queue}`}`);
  if (j.deadline !== null) lines.push(`deadline   ${shortTime(j.deadline)}`);
  if (j.dependsOn.length) lines.push(`dependsOn  ${j.dependsOn.join(', ')}`);
  if (j.error) lines.push(`error      ${j.error.code}: ${j.error.message}`);
  if (j.result !== null) lines.push(`result     ${JSON.stringify(j.result)}`);
  if (j.publish) lines.push(...publishLines(j.publish));
  return lines;
}

/** A job's publish: its state, the last error while failed, and each published object. */
function publishLines(p: NonNullable<Job['publish']>): string[] {
  const tries = p.tries > 0 ? ` (${p.tries} failed ${p.tries === 1 ? 'try' : 'tries'})` : '';
  const lines = [`publish    ${p.state}${tries} by worker ${p.workerId}, attempt ${p.attemptId}`];
  if (p.error && p.state !== 'published') lines.push(`  error    ${p.error.code}: ${p.error.message}`);
  if (p.manifest) {
    lines.push(`  ${p.manifest.objects.length} objects, ${p.manifest.bytes} bytes, to ${p.manifest.publisher} (${p.manifest.kind})`);
    for (const o of p.manifest.objects) lines.push(`  ${o.url}  ${o.bytes} bytes  sha256 ${o.sha256}`);
  }
  return lines;
}

/** Why an attempt ended, or how it stands while it runs; a backup says whose and why first. */
function attemptWhy(a: Attempt): string {
  const why = attemptEnd(a);
  if (a.backupOf === null) return why;
  const reason = a.backupReason === 'deadline' ? 'it would miss the deadline' : "it ran far past the queue's usual time";
  return `backup of ${a.backupOf} (${reason})${why === '-' ? '' : `; ${why}`}`;
}

function attemptEnd(a: Attempt): string {
  if (a.error) return `${a.error.code}: ${a.error.message}`;
  if (a.state === 'completed') return a.resultHash ? `result ${a.resultHash.slice(0, 12)}` : 'result accepted';
  if ((a.state === 'running' || a.state === 'leased') && a.progress !== null) return `progress ${JSON.stringify(a.progress)}`;
  return '-';
}

const ATTEMPTS_HEADER = ['ATTEMPT', 'WORKER', 'STATE', 'LEASED', 'TOOK', 'WHY'];

/** The job's attempts, oldest first; names maps worker ids to names (an id stands in for a name it lacks). */
export function attemptsTable(attempts: readonly Attempt[], names: ReadonlyMap<string, string>, now: number): string[] {
  if (attempts.length === 0) return ['no attempts yet'];
  const rows = attempts.map((a) => [
    a.id,
    names.get(a.workerId) ?? a.workerId,
    a.state,
    shortTime(a.leasedAt),
    shortDuration((a.finishedAt ?? now) - a.leasedAt) + (a.finishedAt === null ? ' so far' : ''),
    attemptWhy(a),
  ]);
  return table(ATTEMPTS_HEADER, rows);
}

export function jobDetail(j: Job, attempts: readonly Attempt[] = [], names: ReadonlyMap<string, string> = new Map(), now = Date.now()): string {
  const lines = jobFields(j);
  if (attempts.length > 0) lines.push('', ...attemptsTable(attempts, names, now));
  return lines.join('\n');
}
