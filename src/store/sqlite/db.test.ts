// SqliteDb's failures as the catalogue has them (the top of db.ts), on real
// files: another connection holding the write lock is STORE_BUSY, a closed
// database is NOT_READY, and anything else (a constraint) passes through.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { VirtualClock } from '../../types/clock.ts';
import { isGafferError, type ErrorCode } from '../../types/errors.ts';
import { SqliteDb } from './db.ts';
import { SqliteExecutor } from './exec.ts';

const isCode = (code: ErrorCode) => (err: unknown) => isGafferError(err, code);

describe('SqliteDb errors', () => {
  let dir: string;
  let path: string;
  let db: SqliteDb;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-sqlite-db-'));
    path = join(dir, 'gaffer.db');
    db = new SqliteDb({ path, clock: new VirtualClock(), busyTimeoutMs: 10 });
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is STORE_BUSY while another connection holds the write lock', async () => {
    const other = new DatabaseSync(path);
    try {
      other.exec('BEGIN IMMEDIATE');
      assert.throws(() => db.tx(() => db.run('DELETE FROM job_transitions')), isCode('STORE_BUSY'));
      await assert.rejects(new SqliteExecutor(db, 'full').write((tx) => tx.run('DELETE FROM job_transitions'), { durable: true }), isCode('STORE_BUSY'));
      other.exec('ROLLBACK');
      assert.ok(db.tx(() => db.run('DELETE FROM job_transitions')) > 0, 'the lock gone, the write goes through');
    } finally {
      other.close();
    }
  });

  it('is NOT_READY once closed, for reads, transactions and queued writes', async () => {
    db.get('SELECT 1 AS ok'); // a statement in the cache before the close
    db.close();
    assert.throws(() => db.get('SELECT 1 AS ok'), isCode('NOT_READY'));
    assert.throws(() => db.all('SELECT 2 AS ok'), isCode('NOT_READY'));
    assert.throws(() => db.run('DELETE FROM job_transitions'), isCode('NOT_READY'));
    assert.throws(() => db.stmt('SELECT 3 AS ok'), isCode('NOT_READY'));
    assert.throws(() => db.tx(() => 1), isCode('NOT_READY'));
    await assert.rejects(new SqliteExecutor(db, 'full').write(async () => 1, { durable: true }), isCode('NOT_READY'));
  });

  it('passes a constraint violation through unchanged', () => {
    assert.throws(
      () => db.tx(() => db.run("INSERT INTO job_transitions (from_state, to_state) VALUES ('queued', 'running'), ('queued', 'running')")),
      (err: unknown) => err instanceof Error && !isGafferError(err) && /UNIQUE constraint failed/.test(err.message),
    );
  });
});
