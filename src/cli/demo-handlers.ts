// The devstack's demo workload, run by `gaffer worker --module` on worker
// threads: CPU-bound hashing (also replicated, on `hash.checked`), and the
// six phases of the sealing pipeline template, each hashing its parents'
// results (which its assignment carries) into its own.
import { createHash } from 'node:crypto';
import type { Json } from '../types/model.ts';
import type { HandlerContext } from '../worker/handler.ts';
import { SEALING_ROUNDS_DEFAULT, SEALING_ROUNDS_FACTOR } from './demo-sealing.ts';

/** A sealing phase: its digest covers the sector, the phase and its parents' digests (inline results; a result sent by reference is named by its job). */
function sealPhase(p: { sector?: string; rounds?: number }, ctx: HandlerContext): Json {
  const phase = ctx.assignment.pipeline?.phase ?? ctx.assignment.queue;
  const from = (ctx.assignment.parents ?? []).map((r) => ('result' in r ? String((r.result as { digest?: unknown } | null)?.digest ?? '') : r.jobId));
  const rounds = Math.max(1, Math.round((p.rounds ?? SEALING_ROUNDS_DEFAULT) * (SEALING_ROUNDS_FACTOR[phase] ?? 1)));
  return { sector: p.sector ?? null, phase, digest: iteratedHash(`${phase}:${p.sector}:${from.join(',')}`, rounds, ctx.signal).slice(0, 16), from };
}

/** sha256 applied `rounds` times: deterministic, CPU-bound, checkable. */
export function iteratedHash(seed: string, rounds: number, signal?: AbortSignal): string {
  let digest = createHash('sha256').update(seed).digest();
  for (let i = 1; i < rounds; i++) {
    digest = createHash('sha256').update(digest).digest();
    if ((i & 0x3fff) === 0) signal?.throwIfAborted();
  }
  return digest.toString('hex');
}

export default function handler(payload: Json, ctx: HandlerContext): Json {
  const p = payload as { seed: string; rounds: number; sector?: string };
  switch (ctx.assignment.queue) {
    case 'hash':
    case 'hash.checked':
      return { digest: iteratedHash(p.seed, p.rounds, ctx.signal) };
    case 'seal.pc1':
    case 'seal.pc2':
    case 'seal.ap':
    case 'seal.c1':
    case 'seal.c2':
    case 'seal.finalize':
      return sealPhase(p, ctx);
    case 'seal.cc':
      // A committed-capacity sector of the backlog: no deal data, sealed by one sealer start to finish (one job, the demo's PC1 share of hashing).
      return sealPhase({ ...p, sector: p.sector ?? 'cc' }, ctx);
    default:
      throw new Error(`the demo has no handler for queue ${ctx.assignment.queue}`);
  }
}
