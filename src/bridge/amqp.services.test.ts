// The AMQP RPC bridge against a real RabbitMQ (Debian's rabbitmq-server, which
// no npm package ships: `npm run test:services` runs this after .ci/run has
// installed it). Without rabbitmq-server these tests fail, saying what to
// install: they are never skipped. Each run starts its own broker on private
// ports and a fresh data directory, a coordinator, `gaffer worker --exec`
// provers and `gaffer bridge amqp` processes, and stops them all at the end.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { countsOf, kill9, stop, sum, until, type Proc } from '../cli/testing.ts';
import { ERROR_CODE_HEADER, JOB_ID_HEADER } from './codec.ts';
import { checkAnswers, fib, rpcClient, startStack, TUTORIAL_CLIENT, type Reply, type Stack } from './fixtures/rpc.ts';
import { RABBIT_HELP, rabbitServerBin, startRabbit, type Rabbit } from './testing.ts';

/** Every wait here ends: replies of a test, and the quiet time after them in which a duplicate would show. */
const WAIT = { repliesMs: 120_000, duplicateWatchMs: 2_000 } as const;

let rabbit: Rabbit;
let stack: Stack;
let bridge: Proc | null = null;

/** Jobs of the fib queue, in every state. */
const jobCount = async (): Promise<number> => sum(await countsOf(stack.client, 'fib'));

async function answered(replies: Map<string, Reply[]>, ids: Iterable<string>, what: string): Promise<void> {
  const wanted = [...ids];
  await until(what, async () => wanted.every((id) => (replies.get(id)?.length ?? 0) > 0), WAIT.repliesMs, 50);
  await new Promise((r) => setTimeout(r, WAIT.duplicateWatchMs));
}

describe('gaffer bridge amqp, against a real RabbitMQ', { timeout: 600_000 }, () => {
  before(async () => {
    assert.ok(rabbitServerBin() !== null, `rabbitmq-server was not found. ${RABBIT_HELP}`);
    rabbit = await startRabbit();
    stack = await startStack(2, 100);
    bridge = await stack.startBridge(rabbit.url);
  });

  after(async () => {
    if (bridge) await stop(bridge);
    await stack?.close();
    await rabbit?.destroy();
  });

  it('answers RabbitMQ\'s tutorial client, unchanged, with a result computed by a gaffer worker', async () => {
    const child = spawn(process.execPath, [TUTORIAL_CLIENT, '30'], { env: { ...process.env, AMQP_URL: rabbit.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), WAIT.repliesMs);
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    clearTimeout(timer);
    assert.equal(code, 0, out);
    assert.match(out, / \[x\] Requesting fib\(30\)/);
    assert.match(out, / \[\.\] Got 832040/);
  });

  it('answers a stream of requests exactly once each across a kill -9 of the bridge', async () => {
    const rpc = await rpcClient(rabbit.url);
    const before = await jobCount();
    const expected = new Map<string, string>();
    for (let i = 0; i < 60; i++) {
      const n = i % 40;
      expected.set(rpc.call(String(n)), String(fib(n)));
    }
    // Kill it once some answers are out and others are still running or queued.
    await until('the first replies', async () => rpc.replies.size >= 10, WAIT.repliesMs, 20);
    assert.ok(rpc.replies.size < 60, 'the bridge was killed mid-stream');
    await kill9(bridge!);
    for (let i = 0; i < 20; i++) expected.set(rpc.call(String(i + 40)), String(fib(i + 40)));
    bridge = await stack.startBridge(rabbit.url);
    await answered(rpc.replies, expected.keys(), '80 replies');
    assert.deepEqual(checkAnswers(rpc.replies, expected), []);
    assert.equal((await jobCount()) - before, 80, 'one job per request');
    await rpc.close();
  });

  it('a redelivered request (same message id) makes no second job, and each delivery is answered', async () => {
    const rpc = await rpcClient(rabbit.url);
    const before = await jobCount();
    const a = rpc.call('20', { messageId: 'request-20' });
    const b = rpc.call('20', { messageId: 'request-20' });
    await answered(rpc.replies, [a, b], 'both replies');
    assert.equal(rpc.replies.get(a)?.[0]?.body, '6765');
    assert.equal(rpc.replies.get(b)?.[0]?.body, '6765');
    assert.equal(rpc.replies.get(a)?.[0]?.headers[JOB_ID_HEADER], rpc.replies.get(b)?.[0]?.headers[JOB_ID_HEADER], 'the same job');
    assert.equal((await jobCount()) - before, 1);
    await rpc.close();
  });

  it('a failed job and a body that is not JSON are error replies with the code in a header', async () => {
    const rpc = await rpcClient(rabbit.url);
    const failed = rpc.call('-1');
    const bad = rpc.call('not json');
    await answered(rpc.replies, [failed, bad], 'the error replies');
    const f = rpc.replies.get(failed)![0]!;
    assert.equal(f.headers[ERROR_CODE_HEADER], 'HANDLER_ERROR', f.body);
    assert.equal((JSON.parse(f.body) as { error: { code: string } }).error.code, 'HANDLER_ERROR');
    assert.match(f.body, /not a whole number/);
    const b = rpc.replies.get(bad)![0]!;
    assert.equal(b.headers[ERROR_CODE_HEADER], 'INVALID_INPUT', b.body);
    await rpc.close();
  });

  it('a coordinator restart (kill -9) loses no request and answers none twice', async () => {
    const rpc = await rpcClient(rabbit.url);
    const expected = new Map<string, string>();
    for (let i = 0; i < 30; i++) expected.set(rpc.call(String(i)), String(fib(i)));
    await until('the first replies', async () => rpc.replies.size >= 5, WAIT.repliesMs, 20);
    await stack.restartCoordinator(kill9);
    for (let i = 30; i < 40; i++) expected.set(rpc.call(String(i)), String(fib(i)));
    await answered(rpc.replies, expected.keys(), '40 replies');
    assert.deepEqual(checkAnswers(rpc.replies, expected), []);
    await rpc.close();
  });

  it('a broker restart loses no request the bridge took and answers none twice (durable reply queue, persistent requests)', async () => {
    const replyQueue = 'fib-replies';
    let rpc = await rpcClient(rabbit.url, replyQueue);
    const expected = new Map<string, string>();
    for (let i = 0; i < 30; i++) expected.set(rpc.call(String(i), { persistent: true }), String(fib(i)));
    await until('the first replies', async () => rpc.replies.size >= 5, WAIT.repliesMs, 20);
    const early = rpc.replies;
    await rpc.close();
    await rabbit.stop();
    await rabbit.start();
    rpc = await rpcClient(rabbit.url, replyQueue);
    for (const [id, list] of early) rpc.replies.set(id, [...list, ...(rpc.replies.get(id) ?? [])]);
    for (let i = 30; i < 40; i++) expected.set(rpc.call(String(i), { persistent: true }), String(fib(i)));
    await answered(rpc.replies, expected.keys(), '40 replies after the broker restart');
    assert.deepEqual(checkAnswers(rpc.replies, expected), []);
    await rpc.close();
  });
});
