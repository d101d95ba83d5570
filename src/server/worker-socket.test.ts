// The worker socket spoken by hand: real sockets on 127.0.0.1, a real
// coordinator on a SQLite file, frames read one by one. Nothing waits on a
// timer: each step waits for the frame or event it needs.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Auth } from './auth.ts';
import { CLOSE_CODES, PROTOCOL_VERSION } from '../types/protocol.ts';
import { GafferError } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';
import { RawClient, startTestCoordinator, TEST_TOKEN, type TestCoordinator } from './testing.ts';

const T = { timeout: 30_000 };

describe('worker socket', () => {
  let tc: TestCoordinator;
  const clients: RawClient[] = [];
  const client = (token: string | null = TEST_TOKEN, url = tc.url): RawClient => {
    const c = new RawClient(url, token);
    clients.push(c);
    return c;
  };
  const spec = (name: string, queues: Record<string, number> = { work: 1 }, extra: object = {}) => ({ name, queues, ...extra });

  beforeEach(async () => {
    tc = await startTestCoordinator({ socket: { protocolViolationsMax: 3 } });
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    await tc.close();
  });

  it('says welcome, assigns, takes heartbeats and progress, and accepts a result', T, async () => {
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: { n: 21 } });
    const c = client();
    const welcome = await c.hello(spec('w1'));
    assert.equal(welcome.protocol, PROTOCOL_VERSION);
    assert.ok(welcome.workerId.length > 0);
    assert.ok(welcome.heartbeatIntervalMs > 0);
    assert.ok(welcome.frameMaxBytes > 0);
    assert.deepEqual([welcome.resumed, welcome.revoked], [[], []]);
    const assign = await c.next('assign');
    assert.equal(assign.assignments.length, 1);
    const a = assign.assignments[0]!;
    assert.deepEqual([a.jobId, a.queue, a.payload, a.attempt, a.workerId], [job.id, 'work', { n: 21 }, 1, welcome.workerId]);
    c.send({ type: 'heartbeat', attempts: [{ attemptId: a.attemptId, lease: a.lease }] });
    c.send({ type: 'progress', attemptId: a.attemptId, lease: a.lease, progress: { half: true } });
    c.send({ type: 'complete', attemptId: a.attemptId, lease: a.lease, result: { n: 42 } });
    assert.deepEqual(await c.next('ack'), { type: 'ack', attemptId: a.attemptId, ok: true });
    const done = await tc.waitForJob(job.id);
    assert.deepEqual([done.state, done.result, done.attempts], ['succeeded', { n: 42 }, 1]);
    const [attempt] = await tc.store.listAttempts({ jobId: job.id });
    assert.deepEqual(attempt?.progress, { half: true });
    assert.deepEqual(c.pending(), [], 'no error frames');
  });

  const TRACE = {
    intervalMs: 100,
    samples: [
      { tMs: 0, cpuMs: 0, rssKb: 2048 },
      { tMs: 100, cpuMs: 95, rssKb: 40_960 },
      { tMs: 180, cpuMs: 170, rssKb: 40_000 },
    ],
  };

  /** Records the trace each complete passes to the store. */
  function storeTraces(): Map<string, unknown> {
    const seen = new Map<string, unknown>();
    const complete = tc.store.complete.bind(tc.store);
    tc.store.complete = (p) => {
      seen.set(p.attemptId, p.trace);
      return complete(p);
    };
    return seen;
  }

  it('passes the trace of a complete to the coordinator, which keeps it with the result', T, async () => {
    const seen = storeTraces();
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 1 });
    const c = client();
    await c.hello(spec('w1'));
    const [a] = (await c.next('assign')).assignments;
    c.send({ type: 'complete', attemptId: a!.attemptId, lease: a!.lease, result: 'r', trace: TRACE });
    assert.deepEqual(await c.next('ack'), { type: 'ack', attemptId: a!.attemptId, ok: true });
    assert.deepEqual(seen.get(a!.attemptId), TRACE, 'validated and handed to the store as sent');
    const done = await tc.waitForJob(job.id);
    assert.deepEqual([done.state, done.result], ['succeeded', 'r']);
    assert.deepEqual(c.pending(), [], 'no error frames');
  });

  it('keeps the trace on the attempt (Attempt.trace), and null for a complete without one', T, async () => {
    const jobs = await tc.coordinator.submitMany([{ queue: 'work', payload: 1 }, { queue: 'work', payload: 2 }]);
    const c = client();
    await c.hello(spec('w1', { work: 2 }));
    const [a, b] = (await c.next('assign')).assignments;
    c.send({ type: 'complete', attemptId: a!.attemptId, lease: a!.lease, result: 'a', trace: TRACE });
    c.send({ type: 'complete', attemptId: b!.attemptId, lease: b!.lease, result: 'b' });
    assert.equal((await c.next('ack')).ok, true);
    assert.equal((await c.next('ack')).ok, true);
    const [withTrace] = await tc.store.listAttempts({ jobId: a!.jobId });
    const [without] = await tc.store.listAttempts({ jobId: b!.jobId });
    assert.deepEqual(withTrace?.trace, TRACE);
    assert.equal(without?.trace, null);
    void jobs;
  });

  it('acks a complete with a trace the coordinator refuses INVALID_INPUT, and takes the result sent again without it', T, async () => {
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 1 });
    const c = client();
    await c.hello(spec('w1'));
    const [a] = (await c.next('assign')).assignments;
    const ref = { attemptId: a!.attemptId, lease: a!.lease };
    const backwards = { intervalMs: 100, samples: [TRACE.samples[1], TRACE.samples[0]] };
    c.send({ type: 'complete', ...ref, result: 'r', trace: backwards });
    const refused = await c.next('ack');
    assert.deepEqual([refused.ok, refused.error?.code], [false, 'INVALID_INPUT']);
    assert.match(refused.error?.message ?? '', /time order/);
    // Not applied: the attempt is still live, and the same result without the trace is taken.
    c.send({ type: 'complete', ...ref, result: 'r' });
    assert.deepEqual(await c.next('ack'), { type: 'ack', attemptId: a!.attemptId, ok: true });
    assert.equal((await tc.waitForJob(job.id)).state, 'succeeded');
    // A trace that is not an object breaks the frame's schema: a violation, answered with an error frame.
    c.send({ type: 'complete', ...ref, result: 'r', trace: 'fast' });
    const error = await c.next('error');
    assert.deepEqual([error.code, error.frame, error.attemptId], ['PROTOCOL_ERROR', 'complete', a!.attemptId]);
    assert.match(error.message, /trace/);
  });

  it('fills free slots in one batch and never more, then one more as a slot frees', T, async () => {
    const jobs = await tc.coordinator.submitMany(Array.from({ length: 5 }, (_, i) => ({ queue: 'work', payload: i })));
    const c = client();
    await c.hello(spec('w1', { work: 2 }));
    const first = await c.next('assign');
    assert.equal(first.assignments.length, 2, 'two slots, two attempts, one frame');
    const [a, b] = first.assignments;
    c.send({ type: 'complete', attemptId: a!.attemptId, lease: a!.lease, result: 'a' });
    await c.next('ack');
    const second = await c.next('assign');
    assert.equal(second.assignments.length, 1, 'one slot freed, one attempt');
    // A barrier: frames are handled in order, so this ack comes after anything the complete caused.
    c.send({ type: 'complete', attemptId: 'nope', lease: 'nope', result: null });
    assert.equal((await c.next('ack')).ok, false);
    assert.deepEqual(c.pending().filter((f) => f.type === 'assign'), [], 'no third attempt while both slots are held');
    const live = await tc.store.listWorkers();
    assert.deepEqual(live[0]?.running, { work: 2 });
    void b;
    void jobs;
  });

  it('refuses a late report from a worker whose lease expired, and keeps the new attempt\'s result', T, async () => {
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 1, heartbeatTimeoutMs: 1000, backoff: { baseMs: 0, maxMs: 0 } });
    const stale = client();
    await stale.hello(spec('stale'));
    const [old] = (await stale.next('assign')).assignments;
    // The stale worker sends nothing; its lease runs out and the sweeper takes the job back.
    const revoke = await stale.next('revoke');
    assert.deepEqual(revoke.attemptIds, [old!.attemptId]);
    const fresh = client();
    await fresh.hello(spec('fresh'));
    const [next] = (await fresh.next('assign')).assignments;
    assert.equal(next!.jobId, job.id);
    assert.equal(next!.attempt, 2, 'the silent worker was not given the job again');
    stale.send({ type: 'complete', attemptId: old!.attemptId, lease: old!.lease, result: 'stale' });
    const refused = await stale.next('ack');
    assert.equal(refused.ok, false);
    assert.equal(refused.error?.code, 'STALE_LEASE');
    fresh.send({ type: 'complete', attemptId: next!.attemptId, lease: next!.lease, result: 'fresh' });
    assert.equal((await fresh.next('ack')).ok, true);
    const done = await tc.waitForJob(job.id);
    assert.deepEqual([done.state, done.result], ['succeeded', 'fresh']);
    const states = (await tc.store.listAttempts({ jobId: job.id })).map((x) => x.state);
    assert.deepEqual(states, ['lost', 'completed']);
  });

  it('resumes the attempts a reconnecting worker presents, and revokes those it no longer holds', T, async () => {
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 1, heartbeatTimeoutMs: 10_000 });
    const first = client();
    const welcome = await first.hello(spec('w1', { work: 2 }));
    const [a] = (await first.next('assign')).assignments;
    first.ws.terminate();
    await first.closed;
    const second = client();
    const bogus = { attemptId: '01BOGUS', lease: 'nope' };
    const again = await second.hello({ id: welcome.workerId, ...spec('w1', { work: 2 }) }, [{ attemptId: a!.attemptId, lease: a!.lease }, bogus]);
    assert.equal(again.workerId, welcome.workerId);
    assert.deepEqual(again.resumed, [a!.attemptId]);
    assert.deepEqual(again.revoked, [bogus.attemptId]);
    second.send({ type: 'complete', attemptId: a!.attemptId, lease: a!.lease, result: 'once' });
    assert.equal((await second.next('ack')).ok, true);
    const done = await tc.waitForJob(job.id);
    assert.deepEqual([done.state, done.result, done.attempts], ['succeeded', 'once', 1]);
  });

  it('refuses a heartbeat naming more attempts than the worker has slots for, and keeps the lease it holds', T, async () => {
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 1, heartbeatTimeoutMs: 10_000 });
    const c = client();
    await c.hello(spec('w1', { work: 2 })); // 2 slots: at most 2 * attemptsPerSlotMax = 4 attempts per heartbeat
    const [a] = (await c.next('assign')).assignments;
    const held = { attemptId: a!.attemptId, lease: a!.lease };
    const before = (await tc.store.listAttempts({ jobId: job.id }))[0]!.leaseExpiresAt;
    const madeUp = Array.from({ length: 5000 }, (_, i) => ({ attemptId: `01MADEUP${i}`, lease: 'x' }));
    c.send({ type: 'heartbeat', attempts: [held, ...madeUp] });
    const refused = await c.next('error');
    assert.deepEqual([refused.code, refused.frame], ['INVALID_INPUT', 'heartbeat']);
    assert.match(refused.message, /at most 4 attempts/);
    assert.equal((await tc.store.listAttempts({ jobId: job.id }))[0]!.leaseExpiresAt, before, 'nothing was extended');
    // Within the bound, the same worker's heartbeat is taken: the held lease is extended, the made-up ones revoked.
    c.send({ type: 'heartbeat', attempts: [held, ...madeUp.slice(0, 3)] });
    const revoke = await c.next('revoke');
    assert.deepEqual(revoke.attemptIds, madeUp.slice(0, 3).map((r) => r.attemptId));
    assert.ok((await tc.store.listAttempts({ jobId: job.id }))[0]!.leaseExpiresAt >= before);
    c.send({ type: 'complete', ...held, result: 'ok' });
    assert.equal((await c.next('ack')).ok, true);
    // A hello presenting more attempts than its slots allow is refused, and the connection closed.
    const greedy = client();
    await greedy.opened;
    greedy.send({ type: 'hello', protocol: PROTOCOL_VERSION, worker: spec('w2'), attempts: madeUp.slice(0, 3) });
    const error = await greedy.next('error');
    assert.deepEqual([error.code, error.frame], ['INVALID_INPUT', 'hello']);
    assert.equal((await greedy.closed).code, CLOSE_CODES.protocolViolations);
  });

  it('answers bad frames with error frames and closes only the connection that keeps sending them', T, async () => {
    const bad = client();
    await bad.opened;
    bad.send({ type: 'heartbeat', attempts: [] });
    assert.deepEqual(await bad.next('error'), { type: 'error', code: 'PROTOCOL_ERROR', message: 'send hello first', frame: 'heartbeat' });
    bad.sendText('this is not json');
    assert.equal((await bad.next('error')).code, 'PROTOCOL_ERROR');
    const good = client();
    await good.hello(spec('good'));
    await bad.hello(spec('bad'));
    bad.send({ type: 'hello', protocol: PROTOCOL_VERSION, worker: spec('bad') });
    const twice = await bad.next('error');
    assert.deepEqual([twice.code, twice.frame, twice.message], ['PROTOCOL_ERROR', 'hello', 'hello was already sent on this connection']);
    // The fourth violation passes the bound of three: the error frame, then the close.
    bad.send({ type: 'launch-missiles' });
    const unknown = await bad.next('error');
    assert.match(unknown.message, /unknown frame type "launch-missiles"/);
    assert.equal((await bad.closed).code, CLOSE_CODES.protocolViolations);
    // The other worker is untouched and still gets work.
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 7 });
    const [a] = (await good.next('assign')).assignments;
    good.send({ type: 'complete', attemptId: a!.attemptId, lease: a!.lease, result: 8 });
    assert.equal((await good.next('ack')).ok, true);
    assert.equal((await tc.waitForJob(job.id)).result, 8);
  });

  it('refuses a frame larger than frameMaxBytes with an error frame, and frames that break their schema', T, async () => {
    await tc.close();
    tc = await startTestCoordinator({ socket: { frameMaxBytes: 1024, protocolViolationsMax: 10 } });
    const c = client();
    await c.hello(spec('w'));
    c.send({ type: 'progress', attemptId: 'a', lease: 'b', progress: 'x'.repeat(2000) });
    const big = await c.next('error');
    assert.equal(big.code, 'PAYLOAD_TOO_LARGE');
    c.send({ type: 'complete', attemptId: 'a', lease: 'b', result: 1, extra: true });
    const extra = await c.next('error');
    assert.deepEqual([extra.code, extra.frame, extra.attemptId], ['PROTOCOL_ERROR', 'complete', 'a']);
    assert.match(extra.message, /unknown field "extra"/);
    c.send({ type: 'fail', attemptId: 'a', lease: 'b' });
    assert.match((await c.next('error')).message, /must have required property 'error'/);
    c.sendText(Buffer.from([1, 2, 3]));
    assert.match((await c.next('error')).message, /not binary/);
    c.send([1, 2]);
    assert.match((await c.next('error')).message, /JSON object/);
    // Still open: a barrier frame is answered.
    c.send({ type: 'complete', attemptId: 'nope', lease: 'nope', result: null });
    const ack = await c.next('ack');
    assert.deepEqual([ack.ok, ack.error?.code], [false, 'ATTEMPT_NOT_FOUND']);
  });

  it('refuses an invalid hello with an error frame and lets the worker try again', T, async () => {
    const c = client();
    await c.opened;
    c.send({ type: 'hello', protocol: PROTOCOL_VERSION, worker: { name: 'w', queues: {}, colour: 'blue' } });
    const err = await c.next('error');
    assert.equal(err.frame, 'hello');
    assert.ok(['INVALID_INPUT', 'UNKNOWN_FIELD'].includes(err.code), err.code);
    const welcome = await c.hello(spec('w'));
    assert.ok(welcome.workerId);
  });

  it('closes a connection that speaks another protocol version', T, async () => {
    const c = client();
    await c.opened;
    c.send({ type: 'hello', protocol: 99, worker: spec('w') });
    const err = await c.next('error');
    assert.match(err.message, /speaks protocol 1, not 99/);
    assert.equal((await c.closed).code, CLOSE_CODES.unsupportedProtocol);
  });

  it('refuses a missing or wrong token, a token without the worker scope, and other paths, before upgrading', T, async () => {
    await tc.close();
    tc = await startTestCoordinator({
      auth: new Auth([
        { token: TEST_TOKEN, scopes: ['worker'] },
        { token: 'client-only', scopes: ['client'] },
      ]),
    });
    await assert.rejects(client(null).opened, { status: 401 });
    await assert.rejects(client('wrong').opened, { status: 401 });
    await assert.rejects(client('client-only').opened, { status: 403 });
    await assert.rejects(client(TEST_TOKEN, tc.url.replace('/v1/worker', '/v1/elsewhere')).opened, { status: 404 });
    await client(TEST_TOKEN).opened;
  });

  it('holds affinity keys from a keys frame, so a job that requires one is assigned', T, async () => {
    const { job } = await tc.coordinator.submit({ queue: 'work', affinity: { key: 'sector-7', mode: 'require' } });
    const c = client();
    const welcome = await c.hello(spec('w', { work: 1 }, { keys: ['other'] }));
    c.send({ type: 'keys', hold: ['sector-7'], release: ['other'] });
    const [a] = (await c.next('assign')).assignments;
    assert.equal(a!.jobId, job.id);
    assert.deepEqual((await tc.store.getWorker({ id: welcome.workerId }))?.keys, ['sector-7']);
  });

  it('refuses a hello with 10,000 keys of 256 characters (INVALID_INPUT, both bounds named), and a keys frame past the bytes', T, async () => {
    const c = client();
    await c.opened;
    const fat = Array.from({ length: LIMITS.workerKeysMax }, (_, i) => String(i).padStart(LIMITS.keyMaxChars, 'k'));
    c.send({ type: 'hello', protocol: PROTOCOL_VERSION, worker: spec('fat', { work: 1 }, { keys: fat }) });
    const err = await c.next('error');
    assert.deepEqual([err.code, err.frame], ['INVALID_INPUT', 'hello']);
    assert.match(err.message, new RegExp(`at most ${LIMITS.workerKeysMax} keys and ${LIMITS.workerKeysMaxBytes} bytes`));
    assert.deepEqual(await tc.coordinator.listWorkers(), [], 'no record was made');
    // Keys that fit, then a keys frame that would pass the bytes: refused, the keys held stay as they were.
    const fits = fat.slice(0, Math.floor(LIMITS.workerKeysMaxBytes / (LIMITS.keyMaxChars + 3)));
    const welcome = await c.hello(spec('fat', { work: 1 }, { keys: fits }));
    c.send({ type: 'keys', hold: fat.slice(fits.length, fits.length + 100) });
    const refused = await c.next('error');
    assert.deepEqual([refused.code, refused.frame], ['INVALID_INPUT', 'keys']);
    assert.equal((await tc.store.getWorker({ id: welcome.workerId }))?.keys.length, fits.length);
  });

  it('sends a revoke when a client cancels the job, and takes no new work after drain', T, async () => {
    const { job } = await tc.coordinator.submit({ queue: 'work' });
    const c = client();
    const welcome = await c.hello(spec('w'));
    const [a] = (await c.next('assign')).assignments;
    await tc.coordinator.cancel(job.id, 'changed my mind');
    const revoke = await c.next('revoke');
    assert.deepEqual(revoke.attemptIds, [a!.attemptId]);
    c.send({ type: 'drain' });
    c.send({ type: 'complete', attemptId: 'barrier', lease: 'x', result: null });
    await c.next('ack');
    assert.equal((await tc.store.getWorker({ id: welcome.workerId }))?.draining, true);
  });

  it('closes the older connection when a worker says hello again on a new one', T, async () => {
    const first = client();
    const welcome = await first.hello(spec('w'));
    const second = client();
    await second.hello({ id: welcome.workerId, ...spec('w') });
    assert.equal((await first.closed).code, CLOSE_CODES.superseded);
    const { job } = await tc.coordinator.submit({ queue: 'work' });
    const [a] = (await second.next('assign')).assignments;
    assert.equal(a!.jobId, job.id);
  });

  it('refuses a hello naming another operator\'s worker id, leaves the holder connected and working, and takes no report for its attempts', T, async () => {
    await tc.close();
    tc = await startTestCoordinator({
      auth: new Auth([
        { token: 'tok-a', scopes: ['worker'], name: 'a', operator: 'lab-a' },
        { token: 'tok-b', scopes: ['worker'], name: 'b', operator: 'lab-b' },
      ]),
    });
    const holder = client('tok-a');
    const welcome = await holder.hello(spec('w'));
    assert.equal((await tc.store.getWorker({ id: welcome.workerId }))?.operator, 'lab-a');
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 1 });
    const [a] = (await holder.next('assign')).assignments;

    // Operator B names A's id: refused for good, and A is not closed.
    const thief = client('tok-b');
    await thief.opened;
    thief.send({ type: 'hello', protocol: PROTOCOL_VERSION, worker: { id: welcome.workerId, ...spec('w', { work: 64 }) } });
    const err = await thief.next('error');
    assert.deepEqual([err.code, err.frame], ['WORKER_ID_TAKEN', 'hello']);
    assert.match(err.message, /belongs to another operator/);
    assert.equal((await thief.closed).code, CLOSE_CODES.identityRefused);
    const record = await tc.store.getWorker({ id: welcome.workerId });
    assert.deepEqual([record?.operator, record?.queues, record?.connected], ['lab-a', { work: 1 }, true], 'the record is untouched');

    // B as a worker of its own may not report A's attempt, even with A's lease.
    const other = client('tok-b');
    const own = await other.hello(spec('w2'));
    assert.notEqual(own.workerId, welcome.workerId);
    other.send({ type: 'complete', attemptId: a!.attemptId, lease: a!.lease, result: 'forged' });
    const refused = await other.next('ack');
    assert.deepEqual([refused.ok, refused.error?.code], [false, 'NOT_ATTEMPT_HOLDER']);

    // The holder heartbeats and completes as if nothing happened.
    holder.send({ type: 'heartbeat', attempts: [{ attemptId: a!.attemptId, lease: a!.lease }] });
    holder.send({ type: 'complete', attemptId: a!.attemptId, lease: a!.lease, result: 'honest' });
    const ack = await holder.next('ack');
    assert.deepEqual([ack.attemptId, ack.ok], [a!.attemptId, true]);
    const done = await tc.store.getJob({ id: job.id });
    assert.deepEqual([done?.state, done?.result], ['succeeded', 'honest']);
    assert.equal(holder.pending().filter((f) => f.type === 'error').length, 0);
  });

  it('acks a report NOT_READY while the store is away, takes it when sent again, and turns a hello away with 1013', T, async () => {
    const { job } = await tc.coordinator.submit({ queue: 'work', payload: 5 });
    const c = client();
    await c.hello(spec('w1'));
    const [a] = (await c.next('assign')).assignments;
    // A backend reports a lost database as the catalogue's NOT_READY (store/postgres/db.ts).
    const unreachable = (): Promise<never> => Promise.reject(new GafferError('NOT_READY', 'the store is unavailable: connect ECONNREFUSED 127.0.0.1:5432'));
    const { complete, upsertWorker } = tc.store;
    tc.store.complete = unreachable;
    tc.store.upsertWorker = unreachable;
    try {
      const report = { type: 'complete', attemptId: a!.attemptId, lease: a!.lease, result: 25 };
      c.send(report);
      const refused = await c.next('ack');
      assert.deepEqual([refused.ok, refused.error?.code], [false, 'NOT_READY'], 'not applied: the worker sends it again');
      // A worker connecting meanwhile is told why, and the connection is closed so that it tries again (elsewhere).
      const late = client();
      await late.opened;
      late.send({ type: 'hello', protocol: PROTOCOL_VERSION, worker: spec('w2') });
      const error = await late.next('error');
      assert.deepEqual([error.code, error.frame], ['NOT_READY', 'hello']);
      assert.equal((await late.closed).code, CLOSE_CODES.tryAgainLater);

      tc.store.complete = complete;
      c.send(report);
      assert.deepEqual(await c.next('ack'), { type: 'ack', attemptId: a!.attemptId, ok: true });
    } finally {
      tc.store.complete = complete;
      tc.store.upsertWorker = upsertWorker;
    }
    const done = await tc.waitForJob(job.id);
    assert.deepEqual([done.state, done.result, done.attempts], ['succeeded', 25, 1]);
  });

  it('closes a connection that sends no hello in time', T, async () => {
    await tc.close();
    tc = await startTestCoordinator({ socket: { helloTimeoutMs: 100 } });
    const c = client();
    await c.opened;
    const err = await c.next('error');
    assert.match(err.message, /no hello within 100 ms/);
    assert.equal((await c.closed).code, CLOSE_CODES.timeout);
  });
});
