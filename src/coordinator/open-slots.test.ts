import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OpenSlots } from './open-slots.ts';
import type { Assignment, Candidate, WorkerSpec } from '../types/model.ts';

const spec = (over: Partial<WorkerSpec> = {}): WorkerSpec => ({ name: 'w', labels: {}, cores: 4, memoryMb: 1024, gpuIds: [], queues: { q: 2 }, keys: [], ...over });
const to = (workerId: string, n = 1): Assignment[] => Array.from({ length: n }, () => ({ workerId }) as Assignment);
const none = { unplaced: 0, unplacedCandidates: [], unusable: [], outsideShare: 0 };

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
    assert.equal(o.named('a', 1, o.mark('a')), true, 'its heartbeat says it holds one: open again');
    assert.equal(o.named('a', 2, o.mark('a')), false);
    assert.equal(o.openCount, 1);
    o.reopen('a');
    assert.equal(o.openCount, 2);
    o.detach('b');
    assert.deepEqual(o.pass().next(10), ['a']);
    assert.equal(o.slots, 2);
  });

  it("corrects a heartbeat's count by what ended and was handed out while it was being stored", () => {
    const o = new OpenSlots(() => true);
    o.attach('a', spec({ queues: { q: 2 } }));
    o.delivered(to('a', 2));
    const mark = o.mark('a');
    // The heartbeat named both attempts; before the store answered it, one of them reported its result.
    o.ended('a');
    assert.equal(o.openCount, 1);
    assert.equal(o.named('a', 2, mark), false, 'the stale count of two does not close it again');
    assert.equal(o.openCount, 1);
    o.delivered(to('a'));
    assert.equal(o.openCount, 0, 'what was handed out after the mark still counts');
    const later = o.mark('a');
    o.delivered(to('a'));
    o.ended('a');
    o.ended('a');
    assert.equal(o.named('a', 2, later), false, 'it was open already');
    assert.equal(o.openCount, 1, 'two named, one more handed out, two ended since: one held');
    o.delivered(to('a'));
    assert.equal(o.openCount, 0, 'and one more fills it');
  });

  it('ignores a heartbeat and a full report that were about an earlier attachment of the worker', () => {
    const o = new OpenSlots(() => true);
    o.attach('a', spec({ queues: { q: 4 } }));
    o.delivered(to('a', 4));
    for (let i = 0; i < 4; i++) o.ended('a');
    const mark = o.mark('a');
    const pass = o.pass();
    assert.deepEqual(pass.next(1), ['a']);
    // The worker reconnects before the heartbeat's answer and the claim's report come back.
    o.attach('a', spec({ queues: { q: 4 } }));
    assert.equal(o.named('a', 0, mark), false);
    pass.more({ ...none, unusable: ['a'] });
    assert.equal(o.openCount, 1, 'the new attachment is still open');
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

  it('goes on to another window only when an unoffered worker could take what was left, or the store found some unusable', () => {
    const o = new OpenSlots(() => true);
    for (let i = 0; i < 4; i++) o.attach(`w${i}`, spec());
    o.attach('big', spec({ cores: 64 }));
    o.attach('keys', spec({ keys: ['sector-1'] }));
    let pass = o.pass();
    const first = pass.next(2);
    assert.ok(first.includes('big'), 'one of each shape first');
    assert.equal(pass.more(none), false, 'nothing left over: the others would find nothing');
    assert.equal(pass.more({ ...none, unplaced: 1, unplacedCandidates: [cand({ cores: 128 })] }), false, 'nobody declares 128 cores');
    assert.equal(pass.more({ ...none, unplaced: 1, unplacedCandidates: [cand({ labels: { gpu: 'a100' } })] }), false, 'nobody has the label');
    assert.equal(pass.more({ ...none, unplaced: 1, unplacedCandidates: [cand({})] }), true, 'an unoffered worker can take it');
    assert.equal(pass.more({ ...none, unplaced: 1, unplacedCandidates: [cand({}, 'sector-1')] }), !first.includes('keys'), 'the key holder, if not offered yet');
    assert.equal(pass.more({ ...none, unplaced: 1, unplacedCandidates: [cand({}, 'sector-9')] }), false, 'nobody holds that key');
    pass = o.pass();
    const all = [...pass.next(3), ...pass.next(3)];
    assert.equal(all.length, 6);
    assert.equal(pass.more({ ...none, unplaced: 3, unplacedCandidates: [cand({})] }), false, 'every open worker offered');
  });

  it('closes workers the store found unusable until something frees a slot, and goes on to the others', () => {
    const o = new OpenSlots(() => true);
    o.attach('a', spec());
    o.attach('b', spec());
    const pass = o.pass();
    assert.deepEqual(pass.next(1), ['a']);
    assert.equal(pass.more({ ...none, unusable: ['a'] }), true, 'b was not offered');
    assert.equal(o.openCount, 1);
    o.ended('a');
    assert.equal(o.openCount, 2, 'an end opens it again');
    o.markFull(['a']);
    assert.equal(o.named('a', 0, o.mark('a')), true, 'and so does a heartbeat');
  });

  it('an attempt that ended after the claim was made keeps a slot open when the claim then reports the worker full', () => {
    const o = new OpenSlots(() => true);
    o.attach('a', spec({ queues: { q: 2 } }));
    o.delivered(to('a', 1));
    const pass = o.pass();
    assert.deepEqual(pass.next(1), ['a']);
    // The claim read a full worker (another coordinator's attempt, say); a result of a's settled before the claim's answer came back.
    o.ended('a');
    assert.equal(pass.more({ ...none, unusable: ['a'] }), false);
    assert.equal(o.openCount, 1, 'the end since the claim was made leaves it open');
    const next = o.pass();
    assert.deepEqual(next.next(1), ['a']);
    next.more({ ...none, unusable: ['a'] });
    assert.equal(o.openCount, 0, 'nothing ended since this claim: closed');
  });
});

function cand(requires: Partial<Candidate['requires']>, requiredKey?: string): Candidate {
  return {
    jobId: 'j', queue: 'q', priority: 0, deadline: null, readyAt: 0, createdAt: 0,
    requires: { cores: 1, memoryMb: 1, gpus: 0, labels: {}, ...requires },
    affinity: requiredKey === undefined ? null : { key: requiredKey, mode: 'require' },
    pinnedWorkerId: null, excludedWorkerIds: [], want: 1,
  } as Candidate;
}
