// AMQP transactions on one channel, batched: the acks and publishes of every
// step that is ready go out together and one tx.commit makes them all happen
// (or, if the channel dies first, none of them). Steps are never interleaved
// with a commit: a step's operations are all sent before the commit that
// covers them.
import type { AMQPChannel } from '@cloudamqp/amqp-client';
import { assert } from '../types/errors.ts';

interface Step {
  ops: () => Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

export class TxBatcher {
  private readonly ch: AMQPChannel;
  private readonly batchMaxOps: number;
  private readonly waiting: Step[] = [];
  private draining = false;
  /** False until open(): the channel's set-up RPCs must not meet a tx.commit (one synchronous method at a time per channel). */
  private opened = false;

  /** `ch` must be in transaction mode (txSelect). */
  constructor(ch: AMQPChannel, batchMaxOps: number) {
    assert(batchMaxOps >= 1, 'a commit batch holds at least one step');
    this.ch = ch;
    this.batchMaxOps = batchMaxOps;
  }

  /** Runs `ops` (acks, publishes on this channel) and resolves once a commit covering them has succeeded. */
  run(ops: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ ops, resolve, reject });
      if (this.opened && !this.draining) void this.drain();
    });
  }

  /** The channel is set up: steps may run from now on. */
  open(): void {
    this.opened = true;
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.batchMaxOps);
      try {
        for (const step of batch) await step.ops();
        await this.ch.txCommit();
        for (const step of batch) step.resolve();
      } catch (err) {
        // The channel is broken: nothing of this batch was committed, and no later step can be.
        for (const step of [...batch, ...this.waiting.splice(0)]) step.reject(err as Error);
      }
    }
    this.draining = false;
  }
}
