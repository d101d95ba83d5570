// What a simulation runs: a scenario (queues, workers, a workload and a fault
// schedule, all generated from a seed) and what one run of it reports. Times
// in a scenario are milliseconds after the simulation's start.
import type { SchedulingHints } from '../scheduler/hints.ts';
import type { Affinity, Labels, PlaceFn, PlaceInput, Placement, Requires } from '../types/model.ts';

/** How every job of one queue is submitted. */
export interface SimQueue {
  /** The same for every job of the queue, so a worker's capacity for the queue is one number. */
  requires: Requires;
  timeoutMs: number;
  heartbeatTimeoutMs: number;
}

/** A simulated worker: what it declares, and how fast it runs each queue. */
export interface SimWorker {
  /** Its name, and its worker id in the store. */
  name: string;
  cores: number;
  memoryMb: number;
  gpus: number;
  labels: Labels;
  /** Slots per served queue. */
  queues: Record<string, number>;
  /** Run-time multiplier per queue (reference hardware is 1; below 1 is faster). A queue left out runs at 1. */
  factor: Record<string, number>;
  /**
   * Scratch space for this many data sets (sealing: sectors). A data set takes
   * a bay from the start of a job that `occupies` a bay until a job that
   * `frees` it completes; the worker declares only as many slots of
   * `queue` as it has bays free (it re-registers when that changes).
   */
  bays?: { queue: string; count: number };
}

/** One job of the workload. */
export interface SimJob {
  /** Unique within the scenario, e.g. `s07.pc1`. */
  key: string;
  queue: string;
  /** Run time on reference hardware, noise included: the same for every attempt and every policy. */
  baseMs: number;
  /** Submitted at this time. */
  releaseMs: number;
  priority: number;
  /** Keys of the jobs it depends on. */
  parents: string[];
  affinity: Affinity | null;
  /** Must start by this time (the store's `deadline`), or it expires. */
  deadlineMs: number | null;
  /** Must finish by this time; later counts as a deadline miss. */
  dueMs: number | null;
  /** When it completes, the worker that ran it holds this affinity key (its output stays there). */
  holds?: string;
  /** When it completes, the worker that ran it releases this key (the data moved away). */
  releases?: string;
  /** Completing it takes a bay (`occupy`) or gives one back (`free`) on the worker that ran it. */
  bay?: 'occupy' | 'free';
}

export type FaultKind = 'stall' | 'leave' | 'hang';

/**
 * A fault: `stall` freezes the worker (no heartbeats, no progress) for
 * `durationMs`, then it carries on with the attempts it still owns; `leave`
 * kills it (its attempts are abandoned) and it registers again after
 * `durationMs`, holding the same keys (its data survived on disk); `hang`
 * stops its attempts (those it holds and those it is given) from making
 * progress for `durationMs` while it goes on heartbeating, as a wedged GPU or
 * a stuck file system does: only a backup or the run-time limit gets the work
 * done meanwhile.
 */
export interface Fault {
  atMs: number;
  worker: string;
  kind: FaultKind;
  durationMs: number;
}

export interface SimSettings {
  heartbeatIntervalMs: number;
  /** How often the lease and deadline sweepers run. */
  sweepIntervalMs: number;
  /** The store shows a worker offline, and gives it nothing, after this long unheard. */
  workerOfflineAfterMs: number;
  /** A run that has not finished by this time is stopped with an error: a bound on the loop. */
  horizonMs: number;
}

export interface Scenario {
  name: string;
  seed: number;
  /** The size it was generated for (sectors, proofs, verifications). */
  size: number;
  queues: Record<string, SimQueue>;
  workers: SimWorker[];
  /** Parents before children. */
  jobs: SimJob[];
  faults: Fault[];
  settings: SimSettings;
}

export interface Policy {
  name: string;
  place: PlaceFn;
  /** The policy with the hints the coordinator keeps (src/coordinator/hints.ts); used instead of `place` when given. */
  hinted?: (input: PlaceInput, hints: SchedulingHints) => Placement[];
}

/** What one run of a scenario under one policy measured. */
export interface RunResult {
  policy: string;
  /** From the start until the last job ended. */
  makespanMs: number;
  jobs: { total: number; succeeded: number; failed: number; expired: number };
  /** Attempts created; `lost` ran out their lease (stalls, departures); `stale` were refused at completion; `backups` were speculative backups. */
  attempts: { total: number; completed: number; lost: number; timedOut: number; stale: number; backups: number };
  /** From ready (dependencies met, backoff over) to leased, over every attempt. */
  waitMs: { p50: number; p99: number; max: number };
  /** Jobs with a deadline, and those that expired unstarted or finished after their due time. */
  deadlines: { total: number; missed: number };
  /** Busy unit-time over available unit-time (capacity times makespan), per resource class. */
  utilisation: Record<string, number>;
  /** Keys of the jobs that did not succeed (expired unstarted, or failed): they did no work the bound must count. */
  unfinished: string[];
  /** Faults that struck before the run ended. */
  faults: Record<FaultKind, number>;
}
