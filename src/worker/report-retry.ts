// What the SDK worker keeps about an attempt's report beyond sending it, and
// about revoked attempts that are still stopping (worker.ts uses both).
import { PROTOCOL_DEFAULTS } from '../types/limits.ts';
import type { LeaseRefFrame } from '../types/protocol.ts';

/**
 * Ack error codes that mean "not applied, try again": the report is kept and
 * sent again with the next heartbeat, until it lands or the lease is lost. An
 * INTERNAL error is the coordinator's fault, not the attempt's: dropping the
 * result would throw the work away. But it may be the report itself that the
 * coordinator cannot handle, so after INTERNAL the report goes again after a
 * backoff (reportResendBaseDelayMs, doubling), at most reportInternalResendsMax
 * times; then the attempt is given up (its lease runs out, the job runs elsewhere).
 */
export const RETRY_REPORT_CODES = new Set(['STORE_BUSY', 'NOT_READY', 'INTERNAL']);

/** A report the coordinator could not apply: sent again with the first heartbeat from `at` on. */
export interface Resend {
  due: boolean;
  at: number;
  /** INTERNAL acks of this report so far: each doubles the wait before the next send, and they are bounded. */
  internalAcks: number;
}

export const noResend = (): Resend => ({ due: false, at: 0, internalAcks: 0 });

/** Marks a report refused with `code` to go again; false when INTERNAL acks of it passed `internalMax` (give it up). */
export function scheduleResend(r: Resend, code: string, bounds: { baseDelayMs: number; internalMax: number }, nowMs: number): boolean {
  if (code !== 'INTERNAL') {
    Object.assign(r, { due: true, at: 0 });
    return true;
  }
  r.internalAcks++;
  if (r.internalAcks > bounds.internalMax) return false;
  Object.assign(r, { due: true, at: nowMs + bounds.baseDelayMs * 2 ** (r.internalAcks - 1) });
  return true;
}

/**
 * Revoked attempts whose child or thread has not stopped yet. Heartbeats name
 * them until it has, so that the coordinator keeps their slots and GPUs held
 * meanwhile (worker-protocol.md, revoke).
 */
export class StoppingAttempts {
  private readonly refsById = new Map<string, LeaseRefFrame>();

  add(ref: LeaseRefFrame, settled: Promise<void>): void {
    this.refsById.set(ref.attemptId, ref);
    void settled.finally(() => this.refsById.delete(ref.attemptId));
  }

  /**
   * What a heartbeat (or hello) names: the attempts held, then those still
   * stopping, as many as attemptsPerSlotMax per slot leaves room for.
   */
  after(held: LeaseRefFrame[], slots: number): LeaseRefFrame[] {
    const room = PROTOCOL_DEFAULTS.attemptsPerSlotMax * Math.max(1, slots) - held.length;
    return room > 0 ? held.concat([...this.refsById.values()].slice(0, room)) : held;
  }
}
