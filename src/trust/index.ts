// Trust: pure decisions about untrusted workers' results (quorum, trace
// verification, reputation, quarantine, spot checks). No I/O, no clock.
export { kmeans2, type TwoClusters } from './kmeans.ts';
export { resample, traceScores, traceVerdict, type TraceVerdict } from './trace.ts';
export { decideQuorum, extraReplicasSpent, type Ballot, type QuorumOutcome, type QuorumParams } from './quorum.ts';
export {
  creditAfterCompleted,
  creditAfterLost,
  isSpotCheck,
  isTrusted,
  judge,
  lostWorkReason,
  quarantineReason,
  trustPolicy,
  type TrustPolicy,
} from './reputation.ts';
