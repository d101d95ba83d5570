// Bodies, replies, idempotency keys and pending-reply records of the AMQP bridge.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LIMITS } from '../types/limits.ts';
import type { Job } from '../types/model.ts';
import { decodePending, encodePending, ERROR_CODE_HEADER, idempotencyKeyOf, payloadOf, replyOf } from './codec.ts';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');

describe('bridge codec', () => {
  it('reads a body as JSON, text or base64 bytes, and refuses one that is not what the format says', () => {
    assert.equal(payloadOf(bytes('30'), 'json'), 30);
    assert.deepEqual(payloadOf(bytes('{"n":1}'), 'json'), { n: 1 });
    assert.equal(payloadOf(bytes('30'), 'text'), '30');
    assert.equal(payloadOf(Buffer.from([0, 255]), 'bytes'), 'AP8=');
    assert.throws(() => payloadOf(bytes('not json'), 'json'), { code: 'INVALID_INPUT' });
    assert.throws(() => payloadOf(Buffer.from([0xff]), 'text'), { code: 'INVALID_INPUT' });
  });

  it('keys a request by message id, else correlation id, per queue; hashes a long one; has none without either', () => {
    assert.equal(idempotencyKeyOf('rpc_queue', { messageId: 'm1', correlationId: 'c1' }), 'amqp:rpc_queue:m:m1');
    assert.equal(idempotencyKeyOf('rpc_queue', { correlationId: 'c1' }), 'amqp:rpc_queue:c:c1');
    assert.notEqual(idempotencyKeyOf('a', { correlationId: 'c1' }), idempotencyKeyOf('b', { correlationId: 'c1' }));
    const long = idempotencyKeyOf('q', { correlationId: 'x'.repeat(300) })!;
    assert.ok(long.length <= LIMITS.keyMaxChars);
    assert.equal(long, idempotencyKeyOf('q', { correlationId: 'x'.repeat(300) }));
    assert.equal(idempotencyKeyOf('q', {}), null);
  });

  it('replies a result in the format, and a failure as an error with its code in a header', () => {
    const ok = replyOf({ id: 'J', state: 'succeeded', result: 832040, error: null } as Job, 'json');
    assert.equal(Buffer.from(ok.body).toString(), '832040');
    assert.equal(ok.headers[ERROR_CODE_HEADER], undefined);
    const text = replyOf({ id: 'J', state: 'succeeded', result: 'hello', error: null } as Job, 'text');
    assert.equal(Buffer.from(text.body).toString(), 'hello');
    const raw = replyOf({ id: 'J', state: 'succeeded', result: 'AP8=', error: null } as Job, 'bytes');
    assert.deepEqual([...raw.body], [0, 255]);
    const failed = replyOf({ id: 'J', state: 'failed', result: null, error: { code: 'TIMEOUT', message: 'too slow' } } as Job, 'json');
    assert.equal(failed.headers[ERROR_CODE_HEADER], 'TIMEOUT');
    assert.deepEqual(JSON.parse(Buffer.from(failed.body).toString()), { error: { code: 'TIMEOUT', message: 'too slow' } });
    const cancelled = replyOf({ id: 'J', state: 'cancelled', result: null, error: null } as Job, 'json');
    assert.equal(cancelled.headers[ERROR_CODE_HEADER], 'CANCELLED');
  });

  it('round-trips a pending-reply record and drops what is not one', () => {
    const p = { jobId: 'J', replyTo: 'amq.gen-1', correlationId: 'c' };
    assert.deepEqual(decodePending(encodePending(p)), p);
    assert.deepEqual(decodePending(encodePending({ ...p, correlationId: null })), { ...p, correlationId: null });
    assert.equal(decodePending(bytes('{"v":2}')), null);
    assert.equal(decodePending(bytes('garbage')), null);
    assert.equal(decodePending(null), null);
  });
});
