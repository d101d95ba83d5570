// kill -9 of a process in the middle of its work on a SQLite file, over and
// over on the same file. A child (crash-child.ts) submits, claims, completes
// and fails jobs, and prints `ACK <jobId> <key|->` once each submit returned.
// The parent kills it with SIGKILL right after reading its N-th ACK line (N
// drawn from a seeded random source, never from a timer), reopens the file
// and checks: every acknowledged job is there, idempotency keys name one job
// each, no job has more than one accepted result and accepted results never
// change, states are consistent. The next child works on the same file. At the
// end every job must still reach a terminal state.
//
// Replay the kill points of a run with GAFFER_CRASH_SEED=<seed> (printed).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { place } from '../../scheduler/index.ts';
import { seededRandom, systemClock, VirtualClock } from '../../types/clock.ts';
import type { Job, Json } from '../../types/model.ts';
import { checkSnapshot, checkTransitions, drainToTerminal, InvariantViolation, readSnapshot, type Snapshot } from '../suite/invariants/index.ts';
import { openSqliteStore } from './store.ts';

/** Children killed in a row on one file. */
const KILLS = 60;
/** A child is killed after 1 to this many acknowledged jobs. */
const ACKS_BEFORE_KILL_MAX = 25;
const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

interface Ack {
  jobId: string;
  key: string | null;
}

test(`kill -9 ${KILLS} times in a row on one SQLite file: nothing acknowledged is lost, one result per job`, { timeout: 120_000 }, async (t) => {
  const envSeed = Number(process.env.GAFFER_CRASH_SEED);
  const seed = Number.isInteger(envSeed) && process.env.GAFFER_CRASH_SEED !== '' ? envSeed : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  t.diagnostic(`seed ${seed}: replay the kill points with GAFFER_CRASH_SEED=${seed}`);
  const random = seededRandom(seed);
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-crash-'));
  const path = join(dir, 'crash.db');
  const acked = new Map<string, Ack>();
  const keyHolder = new Map<string, string>();
  let prev: Snapshot | null = null;
  try {
    for (let i = 0; i < KILLS; i++) {
      const killAfter = 1 + Math.floor(random.next() * ACKS_BEFORE_KILL_MAX);
      const acks = await runChildUntilKilled(path, i, killAfter);
      for (const ack of acks) {
        acked.set(ack.jobId, ack);
        if (ack.key === null) continue;
        const holder = keyHolder.get(ack.key) ?? ack.jobId;
        if (holder !== ack.jobId) throw new InvariantViolation('4', `child ${i}: key ${ack.key} acknowledged as ${ack.jobId}, earlier as ${holder}`);
        keyHolder.set(ack.key, holder);
      }
      const store = openSqliteStore({ path, clock: systemClock, random: seededRandom(i) });
      try {
        const snap = await readSnapshot(store, Date.now());
        checkAfterCrash(snap, prev, acked, `after kill ${i} (at ACK ${killAfter})`);
        prev = snap;
      } finally {
        await store.close();
      }
    }
    await checkEveryJobEnds(path, acked, prev);
    t.diagnostic(`${acked.size} jobs acknowledged over ${KILLS} kills, ${keyHolder.size} idempotency keys`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Starts a child on the file and kills it with SIGKILL right after its `killAfter`-th ACK line. */
async function runChildUntilKilled(path: string, child: number, killAfter: number): Promise<Ack[]> {
  const proc = spawn(process.execPath, [CHILD, path, String(child)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const acks: Ack[] = [];
  let killed = false;
  const bad: string[] = [];
  createInterface({ input: proc.stdout }).on('line', (line) => {
    const m = /^ACK (\S+) (\S+)$/.exec(line);
    if (!m) return void bad.push(line);
    acks.push({ jobId: m[1]!, key: m[2] === '-' ? null : m[2]! });
    if (!killed && acks.length >= killAfter) killed = proc.kill('SIGKILL');
  });
  const [code, signal] = (await once(proc, 'close')) as [number | null, NodeJS.Signals | null];
  if (!killed || signal !== 'SIGKILL') {
    throw new Error(`child ${child} ended by itself (code ${code}, signal ${signal}) after ${acks.length} ACKs:\n${stderr}`);
  }
  if (bad.length > 0) throw new Error(`child ${child} printed lines that are not ACKs: ${JSON.stringify(bad)}`);
  return acks;
}

/** The checks after a kill: the one-snapshot invariants, against the last reading, and against the ACKs. */
function checkAfterCrash(snap: Snapshot, prev: Snapshot | null, acked: Map<string, Ack>, when: string): void {
  try {
    checkSnapshot(snap);
    // Several operations ran since the last reading: states moved along paths of legal moves.
    if (prev) checkTransitions(prev, snap, false);
    for (const ack of acked.values()) {
      const job = snap.jobById.get(ack.jobId);
      if (!job) throw new InvariantViolation('1', `acknowledged job ${ack.jobId} is gone`);
      if (job.idempotencyKey !== ack.key) throw new InvariantViolation('4', `job ${job.id} has key ${job.idempotencyKey}, acknowledged with ${ack.key}`);
    }
    for (const job of snap.jobs) if (job.state === 'succeeded') checkAcceptedResult(snap, job);
  } catch (err) {
    if (err instanceof Error) err.message = `${when}: ${err.message}`;
    throw err;
  }
}

/** 2: the accepted result names its job and, with one replica, the one completed attempt it came from. */
function checkAcceptedResult(snap: Snapshot, job: Job): void {
  const result = job.result as { job?: Json; attempt?: Json } | null;
  if (result === null || result.job !== job.id) throw new InvariantViolation('2', `job ${job.id} accepted ${JSON.stringify(job.result)}`);
  const completed = (snap.attempts.get(job.id) ?? []).filter((a) => a.state === 'completed');
  if (job.replicas === 1 && (completed.length !== 1 || completed[0]!.id !== result.attempt)) {
    throw new InvariantViolation('2', `job ${job.id} accepted ${JSON.stringify(job.result)}; its completed attempts are ${completed.map((a) => a.id)}`);
  }
}

/** 1: with fresh workers and the clock past every lease, every job reaches a terminal state. */
async function checkEveryJobEnds(path: string, acked: Map<string, Ack>, prev: Snapshot | null): Promise<void> {
  const clock = new VirtualClock(Date.now() + 24 * 3600 * 1000);
  const store = openSqliteStore({ path, clock, random: seededRandom(1) });
  try {
    const workerIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const w = await store.upsertWorker({
        spec: { id: `drain-${i}`, name: `drain-${i}`, labels: {}, cores: 64, memoryMb: 65_536, gpuIds: [0, 1, 2, 3], queues: { 'crash.a': 64, 'crash.b': 64 }, keys: [] },
      });
      workerIds.push(w.id);
    }
    // The same results as the children return: replicas agree, a single attempt names itself.
    const replicas = new Map((await readSnapshot(store, clock.now())).jobs.map((j) => [j.id, j.replicas]));
    const out = await drainToTerminal(store, clock, {
      workerIds,
      place,
      result: ({ jobId, attemptId }): Json => ((replicas.get(jobId) ?? 1) > 1 ? { job: jobId } : { job: jobId, attempt: attemptId }),
    });
    if (out.open.length > 0) {
      throw new InvariantViolation('1', `after ${out.rounds} rounds ${out.open.length} jobs never ended: ${out.open.slice(0, 5).map((j) => `${j.id} ${j.state}`).join(', ')}`);
    }
    const snap = await readSnapshot(store, clock.now());
    checkAfterCrash(snap, prev, acked, 'after the drain');
  } finally {
    await store.close();
  }
}
