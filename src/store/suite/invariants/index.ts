// The store invariants as property tests (properties.ts), and the checks and
// liveness drive that the crash test shares with them.
export { storeInvariantProperties, type InvariantOptions } from './properties.ts';
export type { OpenStore, StoreContext } from './context.ts';
export { assertUnchanged, checkSnapshot, checkTransitions, InvariantViolation, readSnapshot, type Snapshot } from './checks.ts';
export { drainToTerminal, type DrainOptions } from './drain.ts';
