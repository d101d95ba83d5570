// Unit tests of the trust policy and of reputation: judging, quarantine,
// trust and spot checks.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom, type Random } from '../types/clock.ts';
import { isGafferError } from '../types/errors.ts';
import { TRUST_DEFAULTS } from '../types/limits.ts';
import type { Reputation } from '../types/model.ts';
import { isSpotCheck, isTrusted, judge, quarantineReason, trustPolicy, type TrustPolicy } from './reputation.ts';

const SEED = 42;

function rep(over: Partial<Reputation> = {}): Reputation {
  return { valid: 0, invalid: 0, timedOut: 0, credit: 4, streak: 0, soloSinceCheck: 0, ...over };
}

/** A Random that counts its draws. */
function counting(inner: Random): Random & { draws: number } {
  const r = {
    draws: 0,
    next(): number {
      r.draws++;
      return inner.next();
    },
  };
  return r;
}

const NEVER_DRAW: Random = {
  next(): number {
    throw new Error('drew a random number');
  },
};

describe('trustPolicy', () => {
  it('defaults to TRUST_DEFAULTS', () => {
    assert.deepEqual(trustPolicy(), { ...TRUST_DEFAULTS });
    assert.deepEqual(trustPolicy({}), { ...TRUST_DEFAULTS });
  });

  it('applies overrides; undefined keeps the default, unknown keys are dropped', () => {
    const overrides = { spotCheckProbability: 0, trustedStreakMin: 0, traceWaypoints: undefined, colour: 'red' };
    assert.deepEqual(trustPolicy(overrides as Partial<TrustPolicy>), {
      ...TRUST_DEFAULTS,
      spotCheckProbability: 0,
      trustedStreakMin: 0,
    });
  });

  it('refuses values out of range with INVALID_INPUT naming the field', () => {
    const bad: [keyof TrustPolicy, unknown][] = [
      ['spotCheckProbability', 1.5],
      ['spotCheckProbability', Number.NaN],
      ['quarantineInvalidShare', -0.1],
      ['quarantineMinResults', 2.5],
      ['extraReplicasMax', -1],
      ['trustedStreakMin', Number.POSITIVE_INFINITY],
      ['spotCheckMaxGapJobs', '3'],
      ['traceWaypoints', 0],
      ['probationUndecidedMax', 0],
    ];
    for (const [field, value] of bad) {
      assert.throws(
        () => trustPolicy({ [field]: value } as Partial<TrustPolicy>),
        (err: unknown) => isGafferError(err, 'INVALID_INPUT') && err.message.includes(field),
        `${field} = ${String(value)}`,
      );
    }
  });

  it('accepts the edges of each range', () => {
    const edges = {
      extraReplicasMax: 0,
      quarantineInvalidShare: 1,
      quarantineMinResults: 0,
      trustedStreakMin: 0,
      spotCheckProbability: 1,
      spotCheckMaxGapJobs: 0,
      traceWaypoints: 1,
      creditInitialSlots: 1,
      quarantineLostShare: 0,
      quarantineLostMin: 1,
      probationValidMin: 0,
      probationUnjudgedMax: 1,
      probationUndecidedMax: 1,
      probationMarginBonus: 0,
    };
    assert.deepEqual(trustPolicy(edges), edges);
  });
});

describe('judge', () => {
  const before = rep({ valid: 3, invalid: 1, timedOut: 2, streak: 3, soloSinceCheck: 4 });

  it('counts a valid result and extends the streak', () => {
    assert.deepEqual(judge(before, 'valid'), { valid: 4, invalid: 1, timedOut: 2, credit: 4, streak: 4, soloSinceCheck: 4 });
  });

  it('counts an invalid result and resets the streak and the solo run', () => {
    assert.deepEqual(judge(before, 'invalid'), { valid: 3, invalid: 2, timedOut: 2, credit: 4, streak: 0, soloSinceCheck: 0 });
  });

  it('leaves its input alone', () => {
    judge(before, 'invalid');
    assert.deepEqual(before, { valid: 3, invalid: 1, timedOut: 2, credit: 4, streak: 3, soloSinceCheck: 4 });
  });
});

describe('quarantineReason', () => {
  const policy = trustPolicy(); // more than 20% invalid, from 3 judged results

  it('does not quarantine a share exactly at the limit', () => {
    // 1 of 5 = 0.2, not more than 0.2.
    assert.equal(quarantineReason(rep({ valid: 4, invalid: 1 }), policy), null);
  });

  it('quarantines a share above the limit', () => {
    // 1 of 4 = 0.25 > 0.2.
    assert.equal(quarantineReason(rep({ valid: 3, invalid: 1 }), policy), '1 of 4 judged results invalid (more than 20%)');
    assert.equal(quarantineReason(rep({ invalid: 3 }), policy), '3 of 3 judged results invalid (more than 20%)');
  });

  it('waits for the minimum number of judged results', () => {
    assert.equal(quarantineReason(rep({ invalid: 2 }), policy), null);
    // Timeouts are not judged results.
    assert.equal(quarantineReason(rep({ invalid: 2, timedOut: 5 }), policy), null);
  });

  it('handles a zero minimum and a zero share', () => {
    const strict = trustPolicy({ quarantineMinResults: 0, quarantineInvalidShare: 0 });
    assert.equal(quarantineReason(rep(), strict), null);
    assert.equal(quarantineReason(rep({ valid: 1 }), strict), null);
    assert.equal(quarantineReason(rep({ valid: 9, invalid: 1 }), strict), '1 of 10 judged results invalid (more than 0%)');
  });

  it('names an uneven share without rounding noise', () => {
    // 0.07 * 100 is 7.000000000000001 in floating point.
    const p = trustPolicy({ quarantineInvalidShare: 0.07 });
    assert.equal(quarantineReason(rep({ valid: 2, invalid: 1 }), p), '1 of 3 judged results invalid (more than 7%)');
  });
});

describe('isTrusted', () => {
  const policy = trustPolicy(); // trusted from a streak of 10

  it('trusts a worker from a streak of trustedStreakMin', () => {
    assert.equal(isTrusted(rep({ streak: 9 }), policy), false);
    assert.equal(isTrusted(rep({ streak: 10 }), policy), true);
    assert.equal(isTrusted(rep({ streak: 11 }), policy), true);
  });

  it('trusts nobody when trustedStreakMin is 0', () => {
    assert.equal(isTrusted(rep({ streak: 100 }), trustPolicy({ trustedStreakMin: 0 })), false);
  });
});

describe('isSpotCheck', () => {
  it('draws exactly once below the maximum gap', () => {
    const policy = trustPolicy({ spotCheckProbability: 0.5 });
    const random = counting(seededRandom(SEED));
    const expected = seededRandom(SEED).next() < 0.5;
    assert.equal(isSpotCheck(rep({ soloSinceCheck: 3 }), policy, random), expected);
    assert.equal(random.draws, 1);
  });

  it('draws once even when the probability decides the answer', () => {
    const never = counting(seededRandom(SEED));
    assert.equal(isSpotCheck(rep(), trustPolicy({ spotCheckProbability: 0 }), never), false);
    assert.equal(never.draws, 1);
    const always = counting(seededRandom(SEED));
    assert.equal(isSpotCheck(rep(), trustPolicy({ spotCheckProbability: 1 }), always), true);
    assert.equal(always.draws, 1);
  });

  it('replays the same answers from the same seed', () => {
    const policy = trustPolicy();
    const run = (): boolean[] => {
      const random = seededRandom(SEED);
      return Array.from({ length: 50 }, () => isSpotCheck(rep(), policy, random));
    };
    assert.deepEqual(run(), run());
  });

  it('always checks at the maximum gap, without drawing', () => {
    const policy = trustPolicy(); // at most 15 solo jobs in a row
    assert.equal(isSpotCheck(rep({ soloSinceCheck: 15 }), policy, NEVER_DRAW), true);
    assert.equal(isSpotCheck(rep({ soloSinceCheck: 16 }), policy, NEVER_DRAW), true);
    assert.equal(isSpotCheck(rep({ soloSinceCheck: 0 }), trustPolicy({ spotCheckMaxGapJobs: 0 }), NEVER_DRAW), true);
    assert.throws(() => isSpotCheck(rep({ soloSinceCheck: 14 }), policy, NEVER_DRAW), /drew a random number/);
  });
});
