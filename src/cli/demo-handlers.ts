// The devstack's demo workload, run by `gaffer worker --module` on worker
// threads: CPU-bound hashing (also replicated, on `hash.checked`), and a
// two-phase sealing pipeline whose phases run where the sector's files are
// (affinity).
import { createHash } from 'node:crypto';
import type { Json } from '../types/model.ts';
import type { HandlerContext } from '../worker/handler.ts';

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
      return { sector: p.sector ?? null, layers: iteratedHash(`pc1:${p.seed}`, p.rounds, ctx.signal).slice(0, 16) };
    case 'seal.pc2':
      return { sector: p.sector ?? null, commR: iteratedHash(`pc2:${p.seed}`, p.rounds, ctx.signal).slice(0, 16) };
    default:
      throw new Error(`the demo has no handler for queue ${ctx.assignment.queue}`);
  }
}
