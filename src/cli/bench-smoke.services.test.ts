// `npm run bench -- --smoke` for the systems that need Redis (BullMQ), which no
// npm package ships: `npm run test:services` runs this, after the machine got
// Debian's redis-server (.ci/run installs it). Without redis-server on the PATH
// and without GAFFER_BENCH_REDIS_URL it fails, saying what to install: it is
// never skipped.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redisServerBin } from '../../bench/services.ts';
import { BENCH_SMOKE_RUN_BOUND_MS, checkBenchSmoke, systemsNeeding } from './fixtures/bench-smoke.ts';

const REDIS_HELP =
  'The Redis-backed bench systems need redis-server, which no npm package ships. Install it (Debian: apt-get update && apt-get install -y redis-server) ' +
  'or set GAFFER_BENCH_REDIS_URL=redis://host:port to a server the bench may flush.';

test('the bench smoke run completes for every system that needs Redis and reports every figure', { timeout: BENCH_SMOKE_RUN_BOUND_MS + 30_000 }, async () => {
  const external = process.env.GAFFER_BENCH_REDIS_URL ?? '';
  assert.ok(external !== '' || redisServerBin() !== null, `redis-server was not found and GAFFER_BENCH_REDIS_URL is not set. ${REDIS_HELP}`);
  const systems = await systemsNeeding(['redis']);
  assert.ok(systems.length > 0, 'the bench has a system that needs Redis');
  await checkBenchSmoke(systems, REDIS_HELP);
});
