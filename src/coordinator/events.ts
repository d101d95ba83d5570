// What the coordinator's event emitter says (coordinator.events), and what
// GET /v1/events streams: a job's new state, or a worker's change.
import type { JobState } from '../types/states.ts';

export interface JobEvent {
  jobId: string;
  state: JobState;
  at: number;
}

export interface WorkerEvent {
  workerId: string;
  event: 'attached' | 'detached' | 'draining' | 'quarantined' | 'released';
  at: number;
}
