// The store conformance suite. Every backend runs it with one call:
//
//   storeContract('sqlite', async (ctx) => openSqliteStore({ path, ...ctx }));
//
// Each test opens a fresh store on a fresh VirtualClock and seeded random
// source, and closes it afterwards (context.ts). Time moves only when a test
// advances the clock, so nothing depends on the speed of the machine. The
// expected values are worked out by hand from the defaults and the times the
// test sets; the comments beside them show the arithmetic.
//
// The tests live in one file per area, each a function of the shared context,
// called here in turn.
//
// Backends (sqlite/, postgres/) pass the same tests. Where one must behave
// differently, the difference is an option of StoreContractOptions, named with
// its reason, and the test checks each side: today only `unstorableText`.
import { describe } from 'node:test';
import { adviceTests } from './advice.ts';
import { backlogTests } from './backlog.ts';
import { claimTests } from './claim.ts';
import { contractContext, type OpenContractStore, type StoreContractOptions } from './context.ts';
import { dependencyTests } from './dependencies.ts';
import { heldBackTests } from './held-back.ts';
import { identityTests } from './identity.ts';
import { pipelineTests } from './pipelines.ts';
import { publishTests } from './publish.ts';
import { queueTests } from './queues.ts';
import { readTests } from './reads.ts';
import { retentionTests } from './retention.ts';
import { settleTests } from './settle.ts';
import { shareTests } from './shares.ts';
import { speculationTests } from './speculation.ts';
import { submitTests } from './submit.ts';
import { sweepTests } from './sweep.ts';
import { trustTests } from './trust.ts';
import { workerTests } from './workers.ts';

export type { OpenContractStore, StoreContext, StoreContractOptions } from './context.ts';

export function storeContract(name: string, open: OpenContractStore, options: StoreContractOptions = {}): void {
  describe(`store contract: ${name}`, () => {
    const ctx = contractContext(open, options);
    submitTests(ctx);
    readTests(ctx);
    claimTests(ctx);
    shareTests(ctx);
    workerTests(ctx);
    identityTests(ctx);
    heldBackTests(ctx);
    settleTests(ctx);
    sweepTests(ctx);
    speculationTests(ctx);
    dependencyTests(ctx);
    pipelineTests(ctx);
    trustTests(ctx);
    queueTests(ctx);
    backlogTests(ctx);
    adviceTests(ctx);
    retentionTests(ctx);
    publishTests(ctx);
  });
}
