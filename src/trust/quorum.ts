// Quorum: decides a replicated job from the result hashes of its attempts.
// Accept only on a decisive lead, wait while attempts are outstanding, add a
// replica while the budget lasts, and otherwise give up with a plain reason.
import { assert } from '../types/errors.ts';

/** Hex characters of a hash shown in a reason. */
const HASH_PREFIX_CHARS = 12;
/** Groups of equal results named in a reason; the rest are counted. */
const REASON_MAX_GROUPS = 8;
/** Worker ids named per group in a reason; the rest are counted. */
const REASON_MAX_WORKERS_PER_GROUP = 8;

/** One completed attempt's vote: the hash of its result. */
export interface Ballot {
  attemptId: string;
  workerId: string;
  hash: string;
}

export type QuorumOutcome =
  /** Attempt ids agreeing / not agreeing with the winning hash, in ballot order. */
  | { kind: 'accept'; hash: string; valid: string[]; invalid: string[] }
  | { kind: 'wait' }
  /** `split`: how the vote stands, without what is done about it (the start of `reason`). */
  | { kind: 'add-replica'; reason: string; split: string }
  | { kind: 'no-quorum'; reason: string };

export interface QuorumParams {
  /** One per completed attempt of the current round. */
  ballots: readonly Ballot[];
  /** Matching results needed to accept (>= 1). */
  quorum: number;
  /**
   * How far the leading result must be ahead of the runner-up (>= 1), counting
   * every pending attempt as a vote for the runner-up: a split vote is not a verdict.
   */
  margin: number;
  /** Attempts live or still wanted. */
  pending: number;
  extraReplicasUsed: number;
  extraReplicasMax: number;
}

/** Ballots with the same hash, in order of their first ballot. */
interface Group {
  hash: string;
  ballots: Ballot[];
}

/**
 * Decides a replicated job from its ballots (one per completed attempt of the
 * current round). Accept the leading hash (most ballots; among equals the
 * earliest, which can then never lead) only when it has >= quorum ballots and
 * stays ahead of the runner-up by >= margin even if every pending attempt
 * voted for the runner-up: two colluders who answer first cannot settle a job
 * before the honest replicas are in, and a split vote adds replicas instead.
 * Otherwise wait while `pending` > 0 (attempts live or still wanted).
 * Otherwise add a replica while extraReplicasUsed < extraReplicasMax.
 * Otherwise no-quorum. Reasons say plainly what disagreed: each group of
 * equal results by the first 12 hex characters of its hash and its worker
 * ids, largest group first, bounded (8 groups, 8 worker ids per group, then
 * "and N more"). Zero ballots with nothing pending: the reason says no
 * results came in.
 */
export function decideQuorum(params: QuorumParams): QuorumOutcome {
  assertParams(params);
  const groups = groupByHash(params.ballots);
  const winner = decisiveGroup(groups, params);
  if (winner !== null) {
    const valid = params.ballots.filter((b) => b.hash === winner.hash).map((b) => b.attemptId);
    const invalid = params.ballots.filter((b) => b.hash !== winner.hash).map((b) => b.attemptId);
    return { kind: 'accept', hash: winner.hash, valid, invalid };
  }
  if (params.pending > 0) return { kind: 'wait' };
  const what = describeDisagreement(groups, params.ballots.length, params.quorum, params.margin);
  if (params.extraReplicasUsed < params.extraReplicasMax) {
    const nth = params.extraReplicasUsed + 1;
    return { kind: 'add-replica', reason: `${what}; adding extra replica ${nth} of ${params.extraReplicasMax}`, split: what };
  }
  return { kind: 'no-quorum', reason: `${what}; ${extraReplicasSpent(params.extraReplicasMax)}` };
}

/** How a reason says that a job may add no more replicas. */
export function extraReplicasSpent(max: number): string {
  return max === 0 ? 'no extra replicas allowed' : `all ${max} extra replicas used`;
}

function assertParams(p: QuorumParams): void {
  const isCount = (n: number): boolean => Number.isInteger(n) && n >= 0;
  assert(Number.isInteger(p.quorum) && p.quorum >= 1, `quorum is an integer >= 1 (got ${p.quorum})`);
  assert(Number.isInteger(p.margin) && p.margin >= 1, `margin is an integer >= 1 (got ${p.margin})`);
  assert(isCount(p.pending), `pending is a count (got ${p.pending})`);
  assert(isCount(p.extraReplicasUsed), `extraReplicasUsed is a count (got ${p.extraReplicasUsed})`);
  assert(isCount(p.extraReplicasMax), `extraReplicasMax is a count (got ${p.extraReplicasMax})`);
  const ids = new Set(p.ballots.map((b) => b.attemptId));
  assert(ids.size === p.ballots.length, 'ballots have distinct attempt ids');
}

function groupByHash(ballots: readonly Ballot[]): Group[] {
  const byHash = new Map<string, Group>();
  for (const b of ballots) {
    const g = byHash.get(b.hash);
    if (g === undefined) byHash.set(b.hash, { hash: b.hash, ballots: [b] });
    else g.ballots.push(b);
  }
  return [...byHash.values()];
}

/** Groups largest first; among equals, the one whose first ballot came first (stable sort). */
function ranked(groups: readonly Group[]): Group[] {
  return [...groups].sort((a, b) => b.ballots.length - a.ballots.length);
}

/** The leading group, if it has the quorum and a lead of `margin` that no pending attempt can take away. */
function decisiveGroup(groups: readonly Group[], p: QuorumParams): Group | null {
  const [top, second] = ranked(groups);
  if (top === undefined || top.ballots.length < p.quorum) return null;
  const runnerUp = (second?.ballots.length ?? 0) + p.pending;
  return top.ballots.length - runnerUp >= p.margin ? top : null;
}

/** Why no hash won, naming every (bounded) group of equal results. */
function describeDisagreement(groups: readonly Group[], count: number, quorum: number, margin: number): string {
  if (count === 0) return `no results came in (${quorum} matching needed)`;
  const list = describeGroups(groups);
  if (count < quorum) {
    const same = groups.length === 1 ? 'all the same' : `${groups.length} different results`;
    return `only ${count} of ${quorum} matching results needed came in: ${same} (${list})`;
  }
  const [top, second] = ranked(groups);
  if (top!.ballots.length >= quorum) {
    const lead = top!.ballots.length - (second?.ballots.length ?? 0);
    return `the vote is split, the leading result ${lead} ahead where ${margin} are needed: ${groups.length} different results (${list})`;
  }
  return `no ${quorum} of ${count} results agreed: ${groups.length} different results (${list})`;
}

/** Largest group first (stable: earlier first ballot among equals), bounded. */
function describeGroups(groups: readonly Group[]): string {
  const sorted = ranked(groups);
  const shown = sorted.slice(0, REASON_MAX_GROUPS).map(describeGroup);
  const hidden = sorted.length - shown.length;
  if (hidden > 0) shown.push(`and ${hidden} more`);
  return shown.join('; ');
}

function describeGroup(g: Group): string {
  const workers = g.ballots.map((b) => b.workerId);
  const named = workers.slice(0, REASON_MAX_WORKERS_PER_GROUP).join(', ');
  const hidden = workers.length - REASON_MAX_WORKERS_PER_GROUP;
  const more = hidden > 0 ? ` and ${hidden} more` : '';
  return `${g.hash.slice(0, HASH_PREFIX_CHARS)} from ${named}${more}`;
}
