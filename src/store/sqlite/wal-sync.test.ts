// The fsync of durable commits off the event loop (wal-sync.ts, exec.ts), on
// real files: the connection commits under NORMAL; a group with a durable
// write settles only after the WAL's fdatasync, a group of only non-durable
// writes does not wait for one, acknowledgements keep the commits' order,
// and a failed fdatasync is told to every write of its group.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { VirtualClock } from '../../types/clock.ts';
import { isGafferError } from '../../types/errors.ts';
import { SqliteDb } from './db.ts';
import { SqliteExecutor } from './exec.ts';
import { WalSync, type WalSyncer } from './wal-sync.ts';

/** A syncer whose fdatasyncs end when the test says. */
class HeldSync implements WalSyncer {
  calls = 0;
  fail: Error | null = null;
  private pending: Array<() => void> = [];
  sync(): Promise<void> {
    this.calls++;
    return new Promise<void>((resolve, reject) => this.pending.push(() => (this.fail ? reject(this.fail) : resolve())));
  }
  release(): void {
    for (const p of this.pending.splice(0)) p();
  }
  get waiting(): number {
    return this.pending.length;
  }
  close(): void {}
}

const turn = () => new Promise<void>((r) => setImmediate(r));

describe('durable commits with the fsync off the event loop', () => {
  let dir: string;
  let path: string;
  let db: SqliteDb;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-wal-sync-'));
    path = join(dir, 'gaffer.db');
    db = new SqliteDb({ path, clock: new VirtualClock() });
    db.db.exec('CREATE TABLE t (v INTEGER)');
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('commits under NORMAL and settles a durable group only after the fdatasync', async () => {
    const held = new HeldSync();
    const ex = new SqliteExecutor(db, 'full', held);
    assert.equal(db.get('PRAGMA synchronous')?.synchronous, 1, 'NORMAL: SQLite itself does not fsync at COMMIT');
    let settled = false;
    const w = ex.write((tx) => tx.run('INSERT INTO t (v) VALUES (1)'), { durable: true }).then(() => (settled = true));
    while (held.waiting === 0) await turn();
    for (let i = 0; i < 5; i++) await turn();
    assert.equal(settled, false, 'not acknowledged before the WAL is on disk');
    assert.equal(db.get('SELECT count(*) AS n FROM t')?.n, 1, 'committed meanwhile');
    held.release();
    await w;
    assert.equal(settled, true);
  });

  it('a group of only non-durable writes needs no fdatasync, and waits for the one before it', async () => {
    const held = new HeldSync();
    const ex = new SqliteExecutor(db, 'full', held);
    const order: string[] = [];
    const first = ex.write((tx) => tx.run('INSERT INTO t (v) VALUES (1)'), { durable: true }).then(() => order.push('durable'));
    while (held.waiting === 0) await turn();
    const second = ex.write((tx) => tx.run('INSERT INTO t (v) VALUES (2)'), { durable: false }).then(() => order.push('lease'));
    for (let i = 0; i < 5; i++) await turn();
    assert.deepEqual(order, [], 'the later group waits for the earlier fdatasync');
    held.release();
    await Promise.all([first, second]);
    assert.deepEqual(order, ['durable', 'lease']);
    assert.equal(held.calls, 1, 'only the durable group was synced');
  });

  it('a failed fdatasync rejects every write of its group as INTERNAL, and stops the store', async () => {
    const held = new HeldSync();
    held.fail = new Error('EIO: i/o error, fdatasync');
    const ex = new SqliteExecutor(db, 'full', held);
    const a = ex.write((tx) => tx.run('INSERT INTO t (v) VALUES (1)'), { durable: true });
    const b = ex.write((tx) => tx.run('INSERT INTO t (v) VALUES (2)'), { durable: false });
    while (held.waiting === 0) await turn();
    const queuedMeanwhile = ex.write((tx) => tx.run('INSERT INTO t (v) VALUES (3)'), { durable: true });
    held.release();
    for (const p of [a, b]) await assert.rejects(p, (err: unknown) => isGafferError(err, 'INTERNAL') && /power cut/.test((err as Error).message));
    const stopped = (err: unknown) => isGafferError(err, 'NOT_READY') && /restart the coordinator/.test((err as Error).message);
    await assert.rejects(queuedMeanwhile, stopped);
    await assert.rejects(ex.write((tx) => tx.run('INSERT INTO t (v) VALUES (4)'), { durable: false }), stopped);
    await assert.rejects(ex.read((x) => x.get('SELECT 1 AS one')), stopped);
  });

  it('syncs the WAL beside the file a symbolic link names', async () => {
    const link = join(dir, 'link.db');
    symlinkSync(path, link);
    const viaLink = new SqliteDb({ path: link, clock: new VirtualClock() });
    try {
      const ex = new SqliteExecutor(viaLink, 'full', new WalSync(link));
      await ex.write((tx) => tx.run('INSERT INTO t (v) VALUES (9)'), { durable: true });
      assert.equal(viaLink.get('SELECT count(*) AS n FROM t')?.n, 1);
      await ex.close();
    } finally {
      viaLink.close();
    }
  });

  it('the real syncer flushes the WAL of a file, and the next write still commits after close and reopen', async () => {
    const sync = new WalSync(path);
    const ex = new SqliteExecutor(db, 'full', sync);
    await ex.write((tx) => tx.run('INSERT INTO t (v) VALUES (7)'), { durable: true });
    await ex.write((tx) => tx.run('INSERT INTO t (v) VALUES (8)'), { durable: true });
    await ex.close();
    db.close();
    db = new SqliteDb({ path, clock: new VirtualClock() });
    assert.deepEqual(
      db.all('SELECT v FROM t ORDER BY v').map((r) => r.v),
      [7, 8],
    );
  });

  it("with 'normal' the syncer is never used", async () => {
    const held = new HeldSync();
    const ex = new SqliteExecutor(db, 'normal', held);
    await ex.write((tx) => tx.run('INSERT INTO t (v) VALUES (1)'), { durable: true });
    assert.equal(held.calls, 0);
  });
});
