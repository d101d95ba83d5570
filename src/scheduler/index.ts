// The scheduler: pure placement decisions, no I/O. place() is the PlaceFn.
export { compareCandidates, effectivePriority, sortCandidates, type SchedulingPolicy } from './order.ts';
export { fits, whyNot } from './fit.ts';
export { place, chooseWorker, compareWorkers } from './place.ts';
