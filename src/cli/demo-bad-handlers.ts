// The devstack's bad actors (`gaffer devstack --bad-actors K`), run by
// `gaffer worker --module` like the honest demo handlers. They serve only the
// replicated queue `hash.checked`, where a vote of the replicas catches them.
// GAFFER_DEMO_BAD_ACTOR picks the behaviour:
// - `liar`: returns a made-up digest at once, doing no work;
// - `sleeper`: does no work either, but waits about as long as an honest run
//   takes before returning a made-up digest, so that it looks busy.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Json } from '../types/model.ts';
import type { HandlerContext } from '../worker/handler.ts';
import { iteratedHash } from './demo-handlers.ts';

export const BAD_ACTOR_ENV = 'GAFFER_DEMO_BAD_ACTOR';
export const BAD_ACTOR_MODES = ['liar', 'sleeper'] as const;
export type BadActorMode = (typeof BAD_ACTOR_MODES)[number];

/** Rounds hashed, a few times over, to measure how long one round takes here. */
const CALIBRATION_ROUNDS = 4_000;
const CALIBRATION_RUNS = 3;

let msPerRound: number | null = null;

/** CPU time this thread has used, in ms: unlike the wall clock, not stretched by other processes on the machine. */
const threadCpuMs = (): number => {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * How long an honest run of `rounds` takes on this machine with a core to
 * itself: measured once per thread, as CPU time, the fastest of a few runs.
 */
function honestRunMs(rounds: number): number {
  if (msPerRound === null) {
    let best = Infinity;
    for (let i = 0; i < CALIBRATION_RUNS; i++) {
      const started = threadCpuMs();
      iteratedHash(`calibration-${i}`, CALIBRATION_ROUNDS);
      best = Math.min(best, threadCpuMs() - started);
    }
    msPerRound = Math.max(best, 0) / CALIBRATION_ROUNDS;
  }
  return rounds * msPerRound;
}

const madeUpDigest = (): string => randomBytes(32).toString('hex');

export default async function handler(payload: Json, ctx: HandlerContext): Promise<Json> {
  const mode = process.env[BAD_ACTOR_ENV];
  if (ctx.assignment.queue !== 'hash.checked') throw new Error(`a bad actor serves only hash.checked, not ${ctx.assignment.queue}`);
  const p = payload as { seed: string; rounds: number };
  switch (mode) {
    case 'liar':
      return { digest: madeUpDigest() };
    case 'sleeper':
      await sleep(honestRunMs(p.rounds), undefined, { signal: ctx.signal });
      return { digest: madeUpDigest() };
    default:
      throw new Error(`${BAD_ACTOR_ENV} must be one of ${BAD_ACTOR_MODES.join(', ')} (got ${String(mode)})`);
  }
}
