import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OpenSlots } from './open-slots.ts';
import type { Assignment, WorkerSpec } from '../types/model.ts';

const spec = (over: Partial<WorkerSpec> = {}): WorkerSpec => ({ name: 'w', labels: {}, cores: 4, memoryMb: 1024, gpuIds: [], queues: { q: 2 }, keys: [], ...over });
const to = (workerId: string, n = 1): Assignment[] => Array.from({ length: n }, () => ({ workerId }) as Assignment);
const none = { unplaced: 0, outsideShare: 0 };

describe('open slots', () => {
  it('follows what each worker holds: handed out, ended, and what its heartbeat names', () => {
    const o = new OpenSlots(() => true);
    o.attach('a', spec());
    o.attach('b', spec());
    assert.equal(o.openCount, 2);
    o.delivered(to('a', 2));
    assert.equal(o.openCount, 1, 'a holds both its slots');
    assert.deepEqual(o.pass().next(10), ['b']);
    o.ended('a');
    assert.equal(o.openCount, 2);
    o.delivered(to('a'));
    assert.equal(o.named('a', 1), true, 'its heartbeat says it holds one: open again');
    assert.equal(o.named('a', 2), false);
    assert.equal(o.openCount, 1);
    o.reopen('a');
    assert.equal(o.openCount, 2);
    o.detach('b');
    assert.deepEqual(o.pass().next(10), ['a']);
    assert.equal(o.slots, 2);
  });

  it('offers at most max workers per window, least recently offered first, and only eligible ones', () => {
    const draining = new Set(['w3']);
    const o = new OpenSlots((id) => !draining.has(id));
    for (let i = 0; i < 6; i++) o.attach(`w${i}`, spec());
    const pass = o.pass();
    assert.deepEqual(pass.next(2), ['w0', 'w1']);
    assert.deepEqual(pass.next(2), ['w2', 'w4'], 'w3 drains');
    assert.deepEqual(pass.next(3), ['w5', 'w0', 'w1'], 'then the ones this pass offered, least recently first');
    assert.deepEqual(o.pass().next(2), ['w2', 'w4'], 'a new pass starts where the rotation is');
  });

  it('puts one worker of every shape in the first window', () => {
    const o = new OpenSlots(() => true);
    for (let i = 0; i < 5; i++) o.attach(`cpu${i}`, spec());
    o.attach('gpu', spec({ gpuIds: [0] }));
    o.attach('other-queue', spec({ queues: { r: 1 } }));
    const first = o.pass().next(3);
    assert.equal(first.length, 3);
    assert.ok(first.includes('gpu') && first.includes('other-queue'), `${first}`);
  });

  it('goes on to another window only when it may place more', () => {
    const o = new OpenSlots(() => true);
    for (let i = 0; i < 4; i++) o.attach(`w${i}`, spec());
    let pass = o.pass();
    pass.next(2);
    assert.equal(pass.more(none), false, 'alike workers, everything read was placed: the others would find nothing');
    assert.equal(pass.more({ unplaced: 1, outsideShare: 0 }), true, 'a candidate left over: the others may take it');
    o.attach('keys', spec({ keys: ['sector-1'] }));
    pass = o.pass();
    const first = pass.next(2);
    if (!first.includes('keys')) assert.equal(pass.more(none), true, 'a key holder not offered yet: jobs needing its keys were not read');
    o.attach('big', spec({ cores: 64 }));
    pass = o.pass();
    pass.next(5);
    pass.next(5);
    assert.equal(pass.more({ unplaced: 3, outsideShare: 0 }), false, 'every open worker offered');
  });
});
