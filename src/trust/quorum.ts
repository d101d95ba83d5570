// Quorum: decides a replicated job from the result hashes of its attempts.
// Accept on enough agreement, wait while attempts are outstanding, add a
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
  | { kind: 'add-replica'; reason: string }
  | { kind: 'no-quorum'; reason: string };

export interface QuorumParams {
  /** One per completed attempt of the current round. */
  ballots: readonly Ballot[];
  /** Matching results needed to accept (>= 1). */
  quorum: number;
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
 * current round). Accept as soon as some hash has >= quorum ballots (if two
 * hashes both could, which needs quorum <= half: the one with more ballots,
 * ties broken by the earliest ballot in input order). Otherwise wait while
 * `pending` > 0 (attempts live or still wanted). Otherwise add a replica while
 * extraReplicasUsed < extraReplicasMax. Otherwise no-quorum. Reasons say
 * plainly what disagreed: each group of equal results by the first 12 hex
 * characters of its hash and its worker ids, largest group first, bounded (8
 * groups, 8 worker ids per group, then "and N more"). Zero ballots with
 * nothing pending: the reason says no results came in.
 */
export function decideQuorum(params: QuorumParams): QuorumOutcome {
  assertParams(params);
  const groups = groupByHash(params.ballots);
  const winner = winningGroup(groups, params.quorum);
  if (winner !== null) {
    const valid = params.ballots.filter((b) => b.hash === winner.hash).map((b) => b.attemptId);
    const invalid = params.ballots.filter((b) => b.hash !== winner.hash).map((b) => b.attemptId);
    return { kind: 'accept', hash: winner.hash, valid, invalid };
  }
  if (params.pending > 0) return { kind: 'wait' };
  const what = describeDisagreement(groups, params.ballots.length, params.quorum);
  if (params.extraReplicasUsed < params.extraReplicasMax) {
    const nth = params.extraReplicasUsed + 1;
    return { kind: 'add-replica', reason: `${what}; adding extra replica ${nth} of ${params.extraReplicasMax}` };
  }
  const max = params.extraReplicasMax;
  const spent = max === 0 ? 'no extra replicas allowed' : `all ${max} extra replicas used`;
  return { kind: 'no-quorum', reason: `${what}; ${spent}` };
}

function assertParams(p: QuorumParams): void {
  const isCount = (n: number): boolean => Number.isInteger(n) && n >= 0;
  assert(Number.isInteger(p.quorum) && p.quorum >= 1, `quorum is an integer >= 1 (got ${p.quorum})`);
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

/** The largest group reaching the quorum; among equals, the one whose first ballot came first. */
function winningGroup(groups: readonly Group[], quorum: number): Group | null {
  let best: Group | null = null;
  for (const g of groups) {
    if (g.ballots.length >= quorum && (best === null || g.ballots.length > best.ballots.length)) best = g;
  }
  return best;
}

/** Why no hash reached the quorum, naming every (bounded) group of equal results. */
function describeDisagreement(groups: readonly Group[], count: number, quorum: number): string {
  if (count === 0) return `no results came in (${quorum} matching needed)`;
  const list = describeGroups(groups);
  if (count < quorum) {
    const same = groups.length === 1 ? 'all the same' : `${groups.length} different results`;
    return `only ${count} of ${quorum} matching results needed came in: ${same} (${list})`;
  }
  return `no ${quorum} of ${count} results agreed: ${groups.length} different results (${list})`;
}

/** Largest group first (stable: earlier first ballot among equals), bounded. */
function describeGroups(groups: readonly Group[]): string {
  const sorted = [...groups].sort((a, b) => b.ballots.length - a.ballots.length);
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
