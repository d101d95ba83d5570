// The invariants of DESIGN.md section 3 as model-based property tests, for any
// store backend.
//
// 1. Random command sequences (submit, register, claim, heartbeat, progress,
//    complete, fail, cancel, retry, clock moves, sweeps, disconnects, drains,
//    restarts) run against a fresh store. After every step the store is read
//    through its public API and checked on its own, against the previous
//    reading (states move only along the transition tables), and against a
//    ledger of what the test was told: acknowledged jobs, leases handed out,
//    results accepted. Each run ends with liveness: with workers that heartbeat
//    and complete everything, and the clock running with sweeps, every job ends.
// 2. Replicated jobs on a fixed pool of workers whose attempts fail or lose
//    their leases: once the workers behave, every job still succeeds.
//
// A backend runs them all with one call (see store/sqlite/invariants.test.ts):
//
//   storeInvariantProperties('sqlite', async ({ clock, random }) => openSqliteStore({ path: ':memory:', clock, random }));
//
// The store's clock and random source come from the run, so a failure replays
// exactly from the seed and path it prints:
//
//   GAFFER_PROP_SEED=<seed> GAFFER_PROP_PATH=<path> npx node --test --test-name-pattern='<test>' <test file>
//
// Here: the properties and how they run. The pieces: the command model
// (commands.ts), one scenario's run (run.ts) and its ledger (ledger.ts), the
// checks of the store's readings (checks.ts), the pool property (pool.ts), and
// liveness (drain.ts).
import { describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { place as schedulerPlace } from '../../../scheduler/index.ts';
import type { PlaceFn } from '../../../types/model.ts';
import { scenarioArb } from './commands.ts';
import type { OpenStore } from './context.ts';
import { poolScenarioArb, runPoolScenario } from './pool.ts';
import { runScenario } from './run.ts';

export interface InvariantOptions {
  /** Runs of the property (default 200; GAFFER_PROP_RUNS overrides). */
  numRuns?: number;
  /** Longest command sequence (default 40). */
  maxCommands?: number;
  /** Close and reopen the store mid-run (only for stores that persist: a file, a database). */
  restart?: boolean;
  /** The fast-check seed; default GAFFER_PROP_SEED, else a fresh one that is printed. */
  seed?: number;
  /** With seed: the path of a failure to replay (GAFFER_PROP_PATH). */
  path?: string;
  /** The place function claims use (default: the scheduler's). */
  place?: PlaceFn;
  /** node:test timeout for the property, ms (default 10 minutes). */
  timeoutMs?: number;
}

/**
 * Registers the invariant properties of a store backend with node:test: one
 * property of random command sequences, checked after every step and ending
 * with liveness; and one of replicated jobs on a fixed pool of workers, whose
 * attempts fail or lose their leases, ending with liveness on that same pool.
 */
export function storeInvariantProperties(name: string, open: OpenStore, options: InvariantOptions = {}): void {
  const numRuns = envInt('GAFFER_PROP_RUNS') ?? options.numRuns ?? 200;
  const maxCommands = options.maxCommands ?? 40;
  const place = options.place ?? ((input) => schedulerPlace(input));
  const slug = name.replace(/[^A-Za-z0-9]+/g, '-');
  let runNo = 0;
  const nextName = (): string => `${slug}-${runNo++}`;
  describe(`store invariants: ${name}`, () => {
    const title = `after every step of ${numRuns} random command sequences (up to ${maxCommands}) every invariant holds, and every job then ends`;
    test(title, { timeout: options.timeoutMs ?? 600_000 }, async (t) => {
      const stats = new Map<string, number>();
      await assertProperty(t, numRuns, options, scenarioArb(maxCommands, options.restart === true), (scenario) =>
        runScenario(scenario, open, place, nextName(), stats),
      );
      // What the runs exercised, so that a property that passes by doing nothing shows.
      t.diagnostic([...stats].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}=${n}`).join(' '));
    });
    const poolTitle = `${numRuns} runs: replicated jobs whose attempts fail or lose their leases still end on a fixed pool of workers`;
    test(poolTitle, { timeout: options.timeoutMs ?? 600_000 }, async (t) => {
      await assertProperty(t, numRuns, options, poolScenarioArb, (scenario) => runPoolScenario(scenario, open, place, nextName()));
    });
  });
}

/** fc.assert with a seed that is printed first and a path from the environment, so a failure replays exactly. */
async function assertProperty<T>(
  t: TestContext,
  numRuns: number,
  options: InvariantOptions,
  arb: fc.Arbitrary<T>,
  run: (value: T) => Promise<void>,
): Promise<void> {
  const seed = options.seed ?? envInt('GAFFER_PROP_SEED') ?? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  const path = options.path ?? process.env.GAFFER_PROP_PATH;
  t.diagnostic(`seed ${seed}: replay with GAFFER_PROP_SEED=${seed} GAFFER_PROP_PATH=<path of the failure> --test-name-pattern=<this test>`);
  await fc.assert(fc.asyncProperty(arb, run), {
    numRuns,
    seed,
    ...(path !== undefined && path !== '' ? { path, endOnFailure: true } : {}),
  });
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isInteger(n) ? n : undefined;
}
