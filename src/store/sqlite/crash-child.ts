// The child of crash.test.ts: works a SQLite store on the system clock and
// random source until it is killed. After every submit that returned (the jobs
// are committed) it prints, synchronously, one line per job:
//
//   ACK <jobId> <idempotencyKey or ->
//
// Usage: crash-child.ts <database file> <child number>
import { writeSync } from 'node:fs';
import { place } from '../../scheduler/index.ts';
import { systemClock, systemRandom } from '../../types/clock.ts';
import { isGafferError } from '../../types/errors.ts';
import type { Json, NewJob } from '../../types/model.ts';
import { openSqliteStore } from './store.ts';

/** Idempotency keys come from a small pool, so that later children repeat earlier children's keys. */
const CRASH_KEY_POOL = 40;
/** The child stops by itself after this many rounds; the parent kills it long before. */
const ROUNDS_MAX = 100_000;

const [path, childArg] = process.argv.slice(2);
if (path === undefined || childArg === undefined) {
  process.stderr.write('usage: crash-child.ts <database file> <child number>\n');
  process.exit(2);
}
const child = Number(childArg);
const random = systemRandom();
const store = openSqliteStore({ path, clock: systemClock, random });
const pick = (n: number): number => Math.floor(random.next() * n);

/** Writes a whole line to stdout before going on: the parent may kill us right after. */
function say(line: string): void {
  const buf = Buffer.from(`${line}\n`);
  for (let off = 0; off < buf.length; ) {
    try {
      off += writeSync(1, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
}

/** A job as normalizeJob would make it (built directly: loading the validator would slow every child's start). */
function newJob(round: number): NewJob {
  const replicas = pick(4) === 0 ? 2 : 1;
  return {
    queue: pick(2) === 0 ? 'crash.a' : 'crash.b',
    payload: { child, round },
    priority: pick(3),
    runAt: null,
    deadline: null,
    timeoutMs: 60_000,
    heartbeatTimeoutMs: 100 + pick(400),
    maxAttempts: 1 + pick(3),
    backoff: { baseMs: 0, maxMs: 10 },
    requires: { cores: pick(3), memoryMb: 0, gpus: pick(5) === 0 ? 1 : 0, labels: {} },
    affinity: null,
    dependsOn: [],
    replicas,
    quorum: replicas === 2 && pick(2) === 0 ? 2 : 1,
    margin: 1,
    distinct: 'worker',
    verify: null,
    adaptive: false,
    idempotencyKey: pick(5) < 2 ? `crash-key-${pick(CRASH_KEY_POOL)}` : null,
    labels: {},
  };
}

async function main(): Promise<void> {
  const workerIds: string[] = [];
  for (let i = 0; i < 3; i++) {
    const w = await store.upsertWorker({
      spec: { name: `crash-${child}-${i}`, labels: {}, cores: 8, memoryMb: 8192, gpuIds: [0, 1], queues: { 'crash.a': 3, 'crash.b': 2 }, keys: [] },
    });
    workerIds.push(w.id);
  }
  const acked: string[] = [];
  for (let round = 0; round < ROUNDS_MAX; round++) {
    const jobs = Array.from({ length: 1 + pick(3) }, () => newJob(round));
    const results = await store.submit({ jobs });
    for (const r of results) {
      say(`ACK ${r.job.id} ${r.job.idempotencyKey ?? '-'}`);
      acked.push(r.job.id);
    }
    for (const a of await store.claim({ workerIds, place, maxJobs: 1 + pick(4) })) {
      const roll = pick(10);
      const ref = { attemptId: a.attemptId, lease: a.lease };
      // A result names its job, and its attempt when the job has one replica, so the parent can
      // tell which attempt's result was accepted. Replicas return equal results, so they agree.
      const replicated = ((await store.getJob({ id: a.jobId }))?.replicas ?? 1) > 1;
      const result: Json = replicated ? { job: a.jobId } : { job: a.jobId, attempt: a.attemptId };
      if (roll < 6) await unlessStale(() => store.complete({ ...ref, result }));
      else if (roll < 8) await unlessStale(() => store.fail({ ...ref, error: { code: 'HANDLER_ERROR', message: 'crash test' }, retryable: roll === 6 }));
      // else: left running; it is lost when its lease runs out.
    }
    const chore = pick(10);
    if (chore === 0) await store.expireAttempts({ limit: 100 });
    if (chore === 1) await store.heartbeat({ workerId: workerIds[pick(workerIds.length)]! });
    if (chore === 2 && acked.length > 0) await settle(() => store.cancel({ jobId: acked[pick(acked.length)]! }));
    if (chore === 3 && acked.length > 0) await settle(() => store.retry({ jobId: acked[pick(acked.length)]! }));
  }
  await store.close();
}

/** A lease that ran out between claim and report (a slow machine) is refused: that is fine here. */
async function unlessStale(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!isGafferError(err, 'STALE_LEASE')) throw err;
  }
}

/** Cancel and retry of a job that already ended or still runs are refused: that is fine here. */
async function settle(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!isGafferError(err, 'INVALID_STATE')) throw err;
  }
}

await main();
