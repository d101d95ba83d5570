// Store conformance, identity: a worker record belongs to the operator whose
// hello created it, and a report counts only from the worker that holds the
// attempt.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isGafferError } from '../../types/errors.ts';
import type { WorkerSpec } from '../../types/model.ts';
import type { ContractContext } from './context.ts';

const OPERATORS = ['lab-a', 'lab-b', null] as const;
type Operator = (typeof OPERATORS)[number];

function spec(id: string, name: string): WorkerSpec {
  return { id, name, labels: {}, cores: 4, memoryMb: 1024, gpuIds: [], queues: { q: 2 }, keys: [] };
}

export function identityTests(ctx: ContractContext): void {
  const { submitOne, addWorker, claimOne, ref } = ctx;

  describe('worker identity', () => {
    it('records the operator of the hello that created the worker, and refuses another operator naming its id, leaving the record alone', async () => {
      const a = await ctx.store.upsertWorker({ spec: spec('w1', 'first'), operator: 'lab-a' });
      assert.equal(a.operator, 'lab-a');
      await assert.rejects(
        ctx.store.upsertWorker({ spec: { ...spec('w1', 'thief'), queues: { q: 64 } }, operator: 'lab-b' }),
        (err: unknown) => isGafferError(err, 'WORKER_ID_TAKEN') && /another operator/.test(err.message),
      );
      await assert.rejects(ctx.store.upsertWorker({ spec: spec('w1', 'anonymous') }), (err: unknown) => isGafferError(err, 'WORKER_ID_TAKEN'));
      const after = await ctx.store.getWorker({ id: 'w1' });
      assert.deepEqual([after?.name, after?.queues, after?.operator], ['first', { q: 2 }, 'lab-a'], 'the refused hellos changed nothing');
      const again = await ctx.store.upsertWorker({ spec: spec('w1', 'renamed'), operator: 'lab-a' });
      assert.deepEqual([again.name, again.operator], ['renamed', 'lab-a'], 'its own operator reconnects as before');
    });

    it('makes worker ids that do not follow one another, even within one millisecond', async () => {
      const made = [];
      const { id: _, ...anonymous } = spec('x', 'anon');
      for (let i = 0; i < 4; i++) made.push((await ctx.store.upsertWorker({ spec: anonymous, operator: 'lab-a' })).id);
      assert.equal(new Set(made).size, 4);
      const tails = made.map((id) => id.slice(10));
      // ULIDs made in one millisecond differ in their last character only; these share no prefix past the time.
      for (let i = 1; i < tails.length; i++) assert.notEqual(tails[i]!.slice(0, 12), tails[i - 1]!.slice(0, 12), made.join(' '));
    });

    it('property: a record is owned by the first operator that names it; any other hello is refused and changes nothing', async () => {
      let run = 0;
      const hello = fc.record({ id: fc.constantFrom('w1', 'w2'), operator: fc.constantFrom(...OPERATORS), name: fc.constantFrom('n1', 'n2', 'n3') });
      await fc.assert(
        fc.asyncProperty(fc.array(hello, { minLength: 1, maxLength: 12 }), async (hellos) => {
          run++;
          const owner = new Map<string, Operator>();
          const name = new Map<string, string>();
          for (const h of hellos) {
            const id = `r${run}-${h.id}`;
            const held = owner.get(id) ?? null;
            const refused = held !== null && held !== h.operator;
            try {
              const w = await ctx.store.upsertWorker({ spec: spec(id, h.name), operator: h.operator });
              assert.ok(!refused, `${h.operator} took ${id} from ${held}`);
              if (held === null) owner.set(id, h.operator);
              name.set(id, h.name);
              assert.deepEqual([w.operator, w.name], [owner.get(id) ?? null, h.name]);
            } catch (err) {
              if (!isGafferError(err, 'WORKER_ID_TAKEN')) throw err;
              assert.ok(refused, `${h.operator} refused ${id} held by ${held}`);
            }
            const now = await ctx.store.getWorker({ id });
            assert.deepEqual([now?.operator ?? null, now?.name], [owner.get(id) ?? null, name.get(id)]);
          }
        }),
        { numRuns: 30, seed: 0x1d },
      );
    });

    it('accepts a result, failure or progress only from the worker holding the attempt, whatever lease it names', async () => {
      await addWorker('holder');
      await addWorker('other');
      const job = await submitOne({});
      const a = await claimOne('holder');
      assert.equal(a.jobId, job.id);
      const stolen = { ...ref(a), workerId: 'other' };
      const notHolder = (err: unknown): boolean => isGafferError(err, 'NOT_ATTEMPT_HOLDER');
      await assert.rejects(ctx.store.complete({ ...stolen, result: { forged: true } }), notHolder);
      await assert.rejects(ctx.store.fail({ ...stolen, error: { code: 'HANDLER_ERROR', message: 'x' }, retryable: false }), notHolder);
      await assert.rejects(ctx.store.progress({ ...stolen, progress: 0.5 }), notHolder);
      assert.equal((await ctx.getJob(job.id)).state, 'running', 'nothing the other worker sent counted');
      await ctx.store.progress({ ...ref(a), workerId: 'holder', progress: 0.5 });
      const out = await ctx.store.complete({ ...ref(a), workerId: 'holder', result: { ok: 1 } });
      assert.deepEqual([out.job.state, out.job.result], ['succeeded', { ok: 1 }]);
    });
  });
}
