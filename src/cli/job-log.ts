// What `gaffer serve` says about jobs: a job that failed for good, with its
// queue and error. Successes are not logged (they are the metrics' and the
// history's); a burst of failures is said up to failedJobLogsPerMinuteMax
// lines a minute, then once as a count, so a broken queue cannot flood the log.
import type { Logger } from 'pino';
import type { Coordinator, JobEvent } from '../coordinator/coordinator.ts';

export const FAILED_JOB_LOGS_PER_MINUTE_MAX = 20;
const MINUTE_MS = 60_000;

export interface JobLog {
  stop(): void;
}

export function logFailedJobs(coordinator: Coordinator, logger: Logger, perMinuteMax = FAILED_JOB_LOGS_PER_MINUTE_MAX): JobLog {
  let windowStart = coordinator.clock.now();
  let said = 0;
  let unsaid = 0;
  const onJob = (e: JobEvent): void => {
    if (e.state !== 'failed') return;
    if (e.at - windowStart >= MINUTE_MS) {
      if (unsaid > 0) logger.warn({ count: unsaid }, 'more jobs failed in the last minute than were logged');
      windowStart = e.at;
      said = 0;
      unsaid = 0;
    }
    if (said >= perMinuteMax) {
      unsaid++;
      return;
    }
    said++;
    // A failed read only loses the line's detail: the job's id is still said.
    void coordinator.getJob(e.jobId).then(
      (job) => logger.warn({ jobId: job.id, queue: job.queue, attempts: job.attempts, code: job.error?.code, reason: job.error?.message }, 'job failed'),
      () => logger.warn({ jobId: e.jobId }, 'job failed'),
    );
  };
  coordinator.events.on('job', onJob);
  return { stop: () => coordinator.events.off('job', onJob) };
}
