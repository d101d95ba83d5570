// The coordinator's side of publishing (docs/publishing.md). The store keeps
// each accepted output's publish durable; this relays it to the worker that
// holds the output: at once when the result is accepted (a change's
// `publish`), when the worker attaches, and on a beat for whatever is due (a
// publish failed and retried, one sent while its worker was attached
// elsewhere, one not answered within publishResendAfterMs). It also passes
// on discards (outputs that will never be published) and records answers.
import type { Change, OutputRef, PublishOrder, Store } from '../store/store.ts';
import type { Clock, TimerHandle } from '../types/clock.ts';
import { GafferError } from '../types/errors.ts';
import { PUBLISH_DEFAULTS } from '../types/limits.ts';
import type { Job, JobError, PublishManifest } from '../types/model.ts';
import { groupByWorker } from './dispatcher.ts';

/** What the relay needs of an attached worker. */
export interface PublishTarget {
  workerId: string;
  publish(order: PublishOrder): void;
  discard(refs: OutputRef[]): void;
}

export interface PublishRelayOptions {
  store: Store;
  clock: Clock;
  /** The workers attached to this coordinator now. */
  targets: () => Iterable<PublishTarget>;
  target: (workerId: string) => PublishTarget | undefined;
  available: () => boolean;
  onError: (err: unknown, msg: string) => void;
  checkIntervalMs?: number;
  resendAfterMs?: number;
  failedRetryBaseDelayMs?: number;
  failedRetryMaxDelayMs?: number;
}

/** A worker's answer to a publish, as the published frame carries it. */
export interface PublishAnswer {
  jobId: string;
  attemptId: string;
  manifest?: PublishManifest;
  error?: Pick<JobError, 'code' | 'message'>;
}

export class PublishRelay {
  private readonly o: PublishRelayOptions;
  private timer: TimerHandle | null = null;
  private checking: Promise<void> | null = null;

  constructor(options: PublishRelayOptions) {
    this.o = options;
  }

  start(): void {
    this.arm();
  }

  stop(): void {
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** The check running now, if any. */
  current(): Promise<void> | null {
    return this.checking;
  }

  /** Tells attached workers what a store change asks of them. */
  changed(changes: readonly Change[]): void {
    for (const ch of changes) {
      if (ch.publish) this.o.target(ch.publish.workerId)?.publish(ch.publish);
      for (const [workerId, refs] of groupByWorker(ch.discards ?? [])) this.o.target(workerId)?.discard(refs);
    }
  }

  /** A worker attached: every publish it owes goes to it now, those sent to a connection now gone included (never rejects). */
  async attached(target: PublishTarget): Promise<void> {
    await this.sendDue([target], true);
  }

  /** Records a worker's answer; a failure is sent again after a backoff that doubles with each failure. */
  async answer(workerId: string, answer: PublishAnswer): Promise<Job> {
    if ((answer.manifest === undefined) === (answer.error === undefined)) {
      throw new GafferError('INVALID_INPUT', 'a published frame carries either a manifest or an error');
    }
    const base = { jobId: answer.jobId, attemptId: answer.attemptId, workerId };
    if (answer.manifest !== undefined) {
      checkManifest(answer.manifest);
      return this.o.store.recordPublish({ ...base, manifest: answer.manifest });
    }
    const job = await this.o.store.getJob({ id: answer.jobId });
    const tries = job?.publish?.tries ?? 0;
    const baseMs = this.o.failedRetryBaseDelayMs ?? PUBLISH_DEFAULTS.publishFailedRetryBaseDelayMs;
    const maxMs = this.o.failedRetryMaxDelayMs ?? PUBLISH_DEFAULTS.publishFailedRetryMaxDelayMs;
    const retryDelayMs = Math.min(maxMs, baseMs * 2 ** Math.min(tries, 30));
    const error = { code: String(answer.error!.code).slice(0, 64), message: String(answer.error!.message) };
    return this.o.store.recordPublish({ ...base, error, retryDelayMs });
  }

  private arm(): void {
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = null;
      if (this.o.available() && !this.checking) {
        this.checking = this.sendDue([...this.o.targets()]).finally(() => (this.checking = null));
      }
      this.arm();
    }, this.o.checkIntervalMs ?? PUBLISH_DEFAULTS.publishCheckIntervalMs);
  }

  /** Sends the due publishes of these workers, at most publishCheckBatchMax; never rejects. */
  private async sendDue(targets: readonly PublishTarget[], all = false): Promise<void> {
    if (targets.length === 0) return;
    try {
      const orders = await this.o.store.duePublishes({
        workerIds: targets.map((t) => t.workerId),
        limit: PUBLISH_DEFAULTS.publishCheckBatchMax,
        resendAfterMs: this.o.resendAfterMs ?? PUBLISH_DEFAULTS.publishResendAfterMs,
        ...(all ? { all } : {}),
      });
      for (const order of orders) this.o.target(order.workerId)?.publish(order);
    } catch (err) {
      this.o.onError(err, 'reading due publishes failed; the next check reads them again');
    }
  }
}

/** A manifest's objects add up to its bytes, and no path is named twice. */
function checkManifest(m: PublishManifest): void {
  const paths = new Set(m.objects.map((o) => o.path));
  if (paths.size !== m.objects.length) throw new GafferError('INVALID_INPUT', 'a manifest names each path once');
  const sum = m.objects.reduce((n, o) => n + o.bytes, 0);
  if (sum !== m.bytes) throw new GafferError('INVALID_INPUT', `a manifest's bytes (${m.bytes}) are the sum of its objects' (${sum})`);
}
