// Pipelines: a template names phases (a queue, requirements, retries, a
// fan-out count, the phases it runs after); an instance of it is its jobs,
// made in one transaction, joined by dependencies. docs/pipelines.md.
import type { AffinityMode, Job, JobError, Json, NewJob, Requires } from './model.ts';

/** What the rest of an instance does when one of its jobs fails for good: fails too, or is cancelled. */
export type OnFailure = 'fail' | 'cancel';

export interface PhaseTemplate {
  /** Unique in its template: a letter, then letters, digits, `_` or `-`. */
  name: string;
  queue: string;
  /** Jobs of this phase in each instance (fan-out); 1 when left out. */
  count?: number;
  /** Phases this one runs after: each of its jobs depends on every job of those (fan-in). */
  after?: string[];
  requires?: Partial<Requires>;
  /**
   * `parent`: run where the parents left their files, the instance's locality
   * key (PipelineSpec.locality). On a phase that runs after none, the parent is
   * the instance itself: its jobs run where the submitter said the data is.
   */
  affinity?: 'parent';
  /** With `affinity`: such a worker first (`prefer`, the default), or only a worker holding the key (`require`). */
  affinityMode?: AffinityMode;
  maxAttempts?: number;
  priority?: number;
  timeoutMs?: number;
  heartbeatTimeoutMs?: number;
}

export interface PipelineTemplate {
  /** Phases in an order where each comes after those it names in `after`. */
  phases: PhaseTemplate[];
  /** `fail` when left out. */
  onFailure?: OnFailure;
}

/** What a client submits: `POST /v1/pipelines`. */
export interface PipelineSpec {
  /** A template named in the config (`[pipelines.NAME]`), or a template given whole. */
  template: string | (PipelineTemplate & { name?: string });
  /** Every job of the instance gets this payload. */
  payload?: Json;
  /** Idempotency: the same key answers the same instance and makes no second set of jobs. */
  key?: string;
  /** The instance's locality key (where its files are); its id when left out. */
  locality?: string;
}

/** One job of a new instance, as the coordinator expanded it from its template. */
export interface NewPipelineJob {
  phase: string;
  /** Its number among the jobs of its phase, from 0. */
  index: number;
  /** The job, with `dependsOn` empty: the store makes the dependencies from `after`. */
  spec: NewJob;
  /** Positions, in NewPipeline.jobs, of the jobs it depends on (always earlier ones). */
  after: number[];
  /** `affinity = "parent"`: the store gives the job the instance's locality key with this mode. */
  parentAffinity: AffinityMode | null;
}

/** A submit after validation. */
export interface NewPipeline {
  template: string;
  /** The template as it was when the instance was made: later edits of the config leave the instance alone. */
  definition: Required<PipelineTemplate>;
  payload: Json;
  key: string | null;
  locality: string | null;
  jobs: NewPipelineJob[];
}

export const PIPELINE_STATES = ['running', 'succeeded', 'failed', 'cancelled'] as const;
export type PipelineState = (typeof PIPELINE_STATES)[number];

export type PhaseState = 'waiting' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface PhaseView {
  name: string;
  queue: string;
  state: PhaseState;
  jobs: { id: string; index: number; state: Job['state'] }[];
}

export interface Pipeline {
  id: string;
  template: string;
  state: PipelineState;
  key: string | null;
  /** The locality key its `affinity = "parent"` phases require. */
  locality: string;
  onFailure: OnFailure;
  /** Why it failed or was cancelled: the job that ended it, with that job's error. */
  error: JobError | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

export interface PipelineDetail extends Pipeline {
  payload: Json;
  phases: PhaseView[];
}

/** Where a job sits in its instance (Job.pipeline; Assignment.pipeline adds the locality key). */
export interface JobPipelineRef {
  id: string;
  phase: string;
  index: number;
}

/**
 * A parent's result as a child's assignment carries it: inline while the
 * parents' results together stay within LIMITS.parentResultsMaxBytes, by
 * reference (its job id and size; GET /v1/jobs/:id has it) past that.
 */
export type ParentResult =
  | { jobId: string; phase: string; index: number; result: Json }
  | { jobId: string; phase: string; index: number; resultBytes: number; byReference: true };
