// Reputation: what judged results do to a worker's record, when a worker is
// quarantined, when it is trusted to run adaptive jobs alone, and when such a
// job is spot-checked anyway.
import { GafferError } from '../types/errors.ts';
import type { Random } from '../types/clock.ts';
import { LIMITS, TRUST_DEFAULTS } from '../types/limits.ts';
import type { Reputation } from '../types/model.ts';

/** Significant digits of the share named in a quarantine reason. */
const PERCENT_SIGNIFICANT_DIGITS = 6;

/** The knobs of trust; see TRUST_DEFAULTS for what each means. */
export interface TrustPolicy {
  extraReplicasMax: number;
  quarantineInvalidShare: number;
  quarantineMinResults: number;
  trustedStreakMin: number;
  spotCheckProbability: number;
  spotCheckMaxGapJobs: number;
  traceWaypoints: number;
  creditInitialSlots: number;
  quarantineLostShare: number;
  quarantineLostMin: number;
  probationValidMin: number;
  probationUnjudgedMax: number;
  probationUndecidedMax: number;
  probationMarginBonus: number;
}

type Check = (v: number) => boolean;

const isFraction: Check = (v) => v >= 0 && v <= 1;
const isCount: Check = (v) => Number.isInteger(v) && v >= 0;
const isPositiveCount: Check = (v) => Number.isInteger(v) && v >= 1;

const FRACTION = { ok: isFraction, must: 'a number in [0, 1]' };
const COUNT = { ok: isCount, must: 'an integer >= 0' };
const POSITIVE_COUNT = { ok: isPositiveCount, must: 'an integer >= 1' };

/** What each field must be, and how to say so. */
const FIELD_RULES: Record<keyof TrustPolicy, { ok: Check; must: string }> = {
  extraReplicasMax: COUNT,
  quarantineInvalidShare: FRACTION,
  quarantineMinResults: COUNT,
  trustedStreakMin: COUNT,
  spotCheckProbability: FRACTION,
  spotCheckMaxGapJobs: COUNT,
  traceWaypoints: POSITIVE_COUNT,
  creditInitialSlots: POSITIVE_COUNT,
  quarantineLostShare: FRACTION,
  quarantineLostMin: POSITIVE_COUNT,
  probationValidMin: COUNT,
  probationUnjudgedMax: POSITIVE_COUNT,
  probationUndecidedMax: POSITIVE_COUNT,
  probationMarginBonus: COUNT,
};

const FIELDS = Object.keys(FIELD_RULES) as (keyof TrustPolicy)[];

/**
 * TRUST_DEFAULTS plus `overrides`, validated: probabilities and shares in
 * [0, 1], counts integers >= 0, waypoints an integer >= 1; anything else
 * throws GafferError INVALID_INPUT naming the field. An override that is
 * undefined keeps the default; keys that are not policy fields are ignored.
 */
export function trustPolicy(overrides: Partial<TrustPolicy> = {}): TrustPolicy {
  const policy: TrustPolicy = { ...TRUST_DEFAULTS };
  for (const field of FIELDS) {
    const value: unknown = overrides[field];
    if (value === undefined) continue;
    const rule = FIELD_RULES[field];
    if (typeof value !== 'number' || !rule.ok(value)) {
      throw new GafferError('INVALID_INPUT', `trust policy: ${field} must be ${rule.must} (got ${String(value)})`, {
        field,
      });
    }
    policy[field] = value;
  }
  return policy;
}

/**
 * Counts after a judged result: valid adds to valid and streak; invalid adds
 * to invalid and resets streak and soloSinceCheck to 0. Returns a new record.
 */
export function judge(r: Reputation, verdict: 'valid' | 'invalid'): Reputation {
  if (verdict === 'valid') return { ...r, valid: r.valid + 1, streak: r.streak + 1 };
  return { ...r, invalid: r.invalid + 1, streak: 0, soloSinceCheck: 0 };
}

/**
 * Quarantine when valid + invalid >= quarantineMinResults and
 * invalid / (valid + invalid) > quarantineInvalidShare (a share exactly at
 * the limit is not quarantined). Returns the reason string (e.g. "3 of 3
 * judged results invalid (more than 20%)") or null.
 */
export function quarantineReason(r: Reputation, p: TrustPolicy): string | null {
  const judged = r.valid + r.invalid;
  if (judged === 0 || judged < p.quarantineMinResults) return null;
  if (!(r.invalid / judged > p.quarantineInvalidShare)) return null;
  return `${r.invalid} of ${judged} judged results invalid (more than ${percent(p.quarantineInvalidShare)})`;
}

/**
 * Quarantine for lost work: when timedOut >= quarantineLostMin and
 * timedOut / (timedOut + completed) > quarantineLostShare (completed: the
 * attempts it completed, whatever their verdict). A worker that takes
 * work and goes silent fails no job (its attempts go back uncharged) but is
 * stopped here. Returns the reason or null.
 */
export function lostWorkReason(timedOut: number, completed: number, p: TrustPolicy): string | null {
  const finished = timedOut + completed;
  if (timedOut < p.quarantineLostMin || !(timedOut / finished > p.quarantineLostShare)) return null;
  return `${timedOut} of ${finished} finished attempts lost or timed out (more than ${percent(p.quarantineLostShare)})`;
}

/** Slow start: one more attempt at once for each it completes, up to what any worker may declare. */
export function creditAfterCompleted(credit: number): number {
  return Math.min(LIMITS.workerSlotsMax, credit + 1);
}

/** Each attempt a worker loses or overruns halves what it may hold at once, down to one. */
export function creditAfterLost(credit: number): number {
  return Math.max(1, Math.floor(credit / 2));
}

/** Trusted for adaptive replication: streak >= trustedStreakMin (and trustedStreakMin > 0). */
export function isTrusted(r: Reputation, p: TrustPolicy): boolean {
  return p.trustedStreakMin > 0 && r.streak >= p.trustedStreakMin;
}

/**
 * Whether a trusted worker's next adaptive job is a spot check (runs fully
 * replicated): always when soloSinceCheck >= spotCheckMaxGapJobs, and then
 * without drawing; else with probability spotCheckProbability, drawing
 * random.next() exactly once (even when the probability is 0 or 1). Replays
 * depend on this: the number of draws must not change.
 */
export function isSpotCheck(r: Reputation, p: TrustPolicy, random: Random): boolean {
  if (r.soloSinceCheck >= p.spotCheckMaxGapJobs) return true;
  return random.next() < p.spotCheckProbability;
}

function percent(share: number): string {
  return `${Number((share * 100).toPrecision(PERCENT_SIGNIFICANT_DIGITS))}%`;
}
