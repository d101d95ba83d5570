// The defaults a submit's missing fields take: one definition, for the
// coordinator's validation and for the code (tests, benches) that builds jobs
// without going through it.
import { JOB_DEFAULTS } from './limits.ts';
import type { Distinct, JobSpec, Json, NewJob, VerifySpec } from './model.ts';

/** Replicas go to workers of distinct operators unless a job or its queue says `worker`. */
export const DEFAULT_DISTINCT: Distinct = 'operator';

/** Queue-level defaults that a submit's missing fields take. */
export type JobDefaults = Partial<
  Pick<NewJob, 'timeoutMs' | 'heartbeatTimeoutMs' | 'maxAttempts' | 'backoff' | 'replicas' | 'quorum' | 'margin' | 'distinct' | 'priority' | 'verify' | 'adaptive'>
>;

/**
 * A complete NewJob from a job spec: each missing field takes the queue's
 * default, else JOB_DEFAULTS; times become epoch ms. It checks nothing: a
 * client's spec goes through normalizeJob (coordinator/validate.ts), which
 * validates it and then calls this.
 */
export function newJob(spec: JobSpec, defaults: JobDefaults = {}): NewJob {
  const replicas = spec.replicas ?? defaults.replicas ?? JOB_DEFAULTS.replicas;
  const quorum = spec.quorum ?? defaults.quorum ?? Math.min(replicas, Math.floor(replicas / 2) + 1);
  const verify = normalizeVerify(spec.verify ?? defaults.verify ?? null);
  const baseMs = spec.backoff?.baseMs ?? defaults.backoff?.baseMs ?? JOB_DEFAULTS.backoffBaseMs;
  const maxMs = spec.backoff?.maxMs ?? defaults.backoff?.maxMs ?? Math.max(baseMs, JOB_DEFAULTS.backoffMaxMs);
  return {
    queue: spec.queue,
    payload: (spec.payload ?? null) as Json,
    priority: spec.priority ?? defaults.priority ?? JOB_DEFAULTS.priority,
    runAt: toMs(spec.runAt),
    deadline: toMs(spec.deadline),
    timeoutMs: spec.timeoutMs ?? defaults.timeoutMs ?? JOB_DEFAULTS.timeoutMs,
    heartbeatTimeoutMs: spec.heartbeatTimeoutMs ?? defaults.heartbeatTimeoutMs ?? JOB_DEFAULTS.heartbeatTimeoutMs,
    maxAttempts: spec.maxAttempts ?? defaults.maxAttempts ?? JOB_DEFAULTS.maxAttempts,
    backoff: { baseMs, maxMs },
    requires: {
      cores: spec.requires?.cores ?? 0,
      memoryMb: spec.requires?.memoryMb ?? 0,
      gpus: spec.requires?.gpus ?? 0,
      labels: spec.requires?.labels ?? {},
    },
    affinity: spec.affinity ?? null,
    dependsOn: spec.dependsOn ?? [],
    replicas,
    quorum,
    margin: spec.margin ?? defaults.margin ?? JOB_DEFAULTS.margin,
    distinct: spec.distinct ?? defaults.distinct ?? DEFAULT_DISTINCT,
    verify,
    adaptive: (spec.adaptive ?? defaults.adaptive ?? false) && replicas > 1,
    idempotencyKey: spec.idempotencyKey ?? null,
    labels: spec.labels ?? {},
  };
}

function toMs(t: number | string | undefined): number | null {
  if (t === undefined) return null;
  return typeof t === 'number' ? t : Date.parse(t);
}

/** `{ queue }` alone means queue verification. */
function normalizeVerify(v: Partial<VerifySpec> | null): VerifySpec | null {
  if (v === null) return null;
  if (v.mode === 'trace') return { mode: 'trace', tolerance: (v as { tolerance: number }).tolerance };
  return { mode: 'queue', queue: (v as { queue: string }).queue };
}
