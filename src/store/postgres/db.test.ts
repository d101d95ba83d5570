// PgDb on the test server: the one place where PostgreSQL's failures become
// the catalogue's NOT_READY and STORE_BUSY (see the top of db.ts), and the
// wait before a lost race runs again, on the injected clock and randomness.
// The server is made to answer with a given SQLSTATE by a DO block that
// raises it; connections are lost for real, by pg_terminate_backend or by
// cutting a TCP relay the store connects through.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { VirtualClock } from '../../types/clock.ts';
import { GafferError, isGafferError, type ErrorCode } from '../../types/errors.ts';
import { POSTGRES_DEFAULTS } from '../../types/limits.ts';
import { PgDb, serverAnswered, storeError, type PgOptions } from './db.ts';
import { testDatabase, type TestDatabase } from './testing.ts';

/** A statement the server refuses with this SQLSTATE. */
const raising = (sqlstate: string): string => `DO $$ BEGIN RAISE EXCEPTION 'raised for a test' USING ERRCODE = '${sqlstate}'; END $$`;

/** Turns of the event loop until `done` holds (bounded: a test fails rather than hang). */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(done(), `timed out waiting for ${what}`);
}

/** Settles p, firing the virtual clock's timers (the retry waits) as they are set. */
async function settle<T>(p: Promise<T>, clock: VirtualClock): Promise<PromiseSettledResult<T>> {
  let out: PromiseSettledResult<T> | null = null;
  void Promise.allSettled([p]).then(([r]) => (out = r!));
  await until(() => {
    if (clock.pendingTimers() > 0) clock.advance(1000);
    return out !== null;
  }, 'the call to settle');
  return out!;
}

/** The rejection of p, which must reject. */
async function rejection(p: Promise<unknown>, clock: VirtualClock): Promise<unknown> {
  const r = await settle(p, clock);
  assert.equal(r.status, 'rejected', 'the call failed');
  return (r as PromiseRejectedResult).reason;
}

/** A catalogue error made from a driver's: its code, the SQLSTATE in details (one of `sqlstates`), the driver's error as cause. */
function assertStoreError(err: unknown, code: ErrorCode, ...sqlstates: (string | undefined)[]): asserts err is GafferError {
  assert.ok(isGafferError(err, code), `${code} expected, got ${String(err)}`);
  const sqlstate = (err.details as { sqlstate?: string } | undefined)?.sqlstate;
  assert.ok(sqlstates.includes(sqlstate), `SQLSTATE ${sqlstate} in details, expected one of ${sqlstates.join(', ')}`);
  assert.deepEqual(err.details, sqlstate === undefined ? undefined : { sqlstate });
  assert.ok(err.cause instanceof Error, 'the driver error is kept as the cause');
  if (sqlstate !== undefined) assert.equal((err.cause as { code?: unknown }).code, sqlstate);
}

/** A TCP relay to the test server: `cut()` drops every connection through it, `close()` also refuses new ones. */
async function relay(url: string): Promise<{ url: string; cut: () => void; close: () => Promise<void> }> {
  // The driver's own reading of the URL (a unix socket directory as host, say).
  const { host, port, user, password, database } = new pg.Client({ connectionString: url });
  const target = host.startsWith('/') ? { path: `${host}/.s.PGSQL.${port}` } : { host, port };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect(target);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const auth = encodeURIComponent(user ?? '') + (password ? `:${encodeURIComponent(password)}` : '');
  const relayed = `postgres://${auth}@127.0.0.1:${(server.address() as net.AddressInfo).port}/${encodeURIComponent(database ?? '')}`;
  const cut = () => {
    for (const s of sockets) s.destroy();
  };
  return { url: relayed, cut, close: () => new Promise((resolve) => (cut(), server.close(() => resolve()))) };
}

describe('PostgreSQL errors: classification', () => {
  const err = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });
  const cases: [string, unknown, 'NOT_READY' | 'STORE_BUSY' | null][] = [
    ['connection refused', err('ECONNREFUSED'), 'NOT_READY'],
    ['connection reset', err('ECONNRESET'), 'NOT_READY'],
    ['admin shutdown (pg_ctl stop)', err('57P01', 'terminating connection due to administrator command'), 'NOT_READY'],
    ['server starting up', err('57P03', 'the database system is starting up'), 'NOT_READY'],
    ['connection failure (class 08)', err('08006'), 'NOT_READY'],
    ['the driver lost its socket', new Error('Connection terminated unexpectedly'), 'NOT_READY'],
    ['a new connection timed out', new Error('Connection terminated due to connection timeout'), 'NOT_READY'],
    ['every address refused', new AggregateError([err('ECONNREFUSED'), err('ECONNREFUSED')], ''), 'NOT_READY'],
    ['too many connections: the server answered', err('53300'), 'STORE_BUSY'],
    ['serialization failure', err('40001'), 'STORE_BUSY'],
    ['deadlock', err('40P01'), 'STORE_BUSY'],
    ['lock not available', err('55P03'), 'STORE_BUSY'],
    ['statement timeout', err('57014'), 'STORE_BUSY'],
    ['no pooled connection in time', new Error('timeout exceeded when trying to connect'), 'STORE_BUSY'],
    ['a unique violation is a bug, not an outage', err('23505'), null],
    ['a plain error', new Error('boom'), null],
    ['a refusal', new GafferError('STALE_LEASE'), null],
    ['the catalogue errors a store already throws', new GafferError('STORE_BUSY', 'locked'), null],
    ['not a thing', 'text', null],
  ];
  for (const [what, input, expected] of cases) {
    it(`${what}: ${expected ?? 'passes through unchanged'}`, () => {
      const out = storeError(input);
      if (expected === null) assert.equal(out, input);
      else assertStoreError(out, expected, undefined);
    });
  }

  it('says a call was refused (nothing changed) unless the connection failed or the error is of unknown origin', () => {
    assert.equal(serverAnswered(new GafferError('NOT_READY')), false);
    assert.equal(serverAnswered(new GafferError('STORE_BUSY')), true);
    assert.equal(serverAnswered(new GafferError('INVALID_INPUT')), true);
    assert.equal(serverAnswered(new Error('boom')), false);
  });
});

describe('PgDb', () => {
  let db: TestDatabase;
  let admin: pg.Client;
  const opened: PgDb[] = [];

  before(async () => {
    db = await testDatabase();
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
  });

  after(async () => {
    for (const d of opened) await d.close();
    await admin.end();
    await db.drop();
  });

  async function open(clock: VirtualClock, over: Partial<PgOptions> = {}): Promise<PgDb> {
    const d = await PgDb.open({ url: db.url, schema: db.schema, clock, random: { next: () => 0 }, ...over }, 'db-test');
    opened.push(d);
    return d;
  }

  it('waits on the injected clock, jittered by the injected randomness, before it runs a lost race again', async () => {
    const clock = new VirtualClock();
    const pgdb = await open(clock);
    let runs = 0;
    let settled = false;
    const out = pgdb
      .tx(async (tx) => {
        runs++;
        if (runs === 1) await tx.run(raising('40001'));
        return runs;
      })
      .finally(() => (settled = true));
    await until(() => clock.pendingTimers() === 1, 'the retry wait');
    // random 0: half the base delay.
    const waitMs = POSTGRES_DEFAULTS.txRetryBaseDelayMs / 2;
    clock.advance(waitMs - 0.5);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual([runs, settled], [1, false], 'nothing runs before the injected clock reaches the wait');
    clock.advance(0.5);
    assert.equal(await out, 2);
  });

  for (const sqlstate of ['40001', '40P01']) {
    it(`a transaction that loses its race (${sqlstate}) every time is STORE_BUSY once the retries run out`, async () => {
      const clock = new VirtualClock();
      const pgdb = await open(clock);
      let runs = 0;
      const failed = await rejection(
        pgdb.tx(async (tx) => void (runs++, await tx.run(raising(sqlstate)))),
        clock,
      );
      assertStoreError(failed, 'STORE_BUSY', sqlstate);
      assert.equal(runs, POSTGRES_DEFAULTS.txRetryMax + 1);
    });
  }

  for (const sqlstate of ['40001', '55P03', '57014', '53300']) {
    it(`the server's busy answer ${sqlstate} is STORE_BUSY, in a read and in a transaction`, async () => {
      const clock = new VirtualClock();
      const pgdb = await open(clock);
      assertStoreError(await rejection(pgdb.read((sql) => sql.run(raising(sqlstate))), clock), 'STORE_BUSY', sqlstate);
      assertStoreError(await rejection(pgdb.tx((tx) => tx.run(raising(sqlstate))), clock), 'STORE_BUSY', sqlstate);
    });
  }

  it("passes the server's other refusals and the store's own errors through unchanged", async () => {
    const clock = new VirtualClock();
    const pgdb = await open(clock);
    for (const call of [pgdb.read.bind(pgdb), pgdb.tx.bind(pgdb)]) {
      const refused = await rejection(call((sql) => sql.run(raising('23505'))), clock);
      assert.ok(refused instanceof pg.DatabaseError && refused.code === '23505', String(refused));
      assert.equal(serverAnswered(refused), true);
      const own = new GafferError('STALE_LEASE', 'not yours');
      assert.equal(await rejection(call(async () => Promise.reject(own)), clock), own);
    }
  });

  it('is NOT_READY when its connection is terminated mid-call', async () => {
    const clock = new VirtualClock();
    const pgdb = await open(clock);
    for (const call of [pgdb.read.bind(pgdb), pgdb.tx.bind(pgdb)]) {
      let pid = 0;
      const running = call(async (sql) => {
        pid = Number((await sql.get('SELECT pg_backend_pid() AS pid'))?.pid);
        return sql.get('SELECT pg_sleep(30)');
      });
      // Watched from now on: it may fail before the terminating query returns.
      const failing = rejection(running, clock);
      await until(() => pid > 0, 'the call to start');
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      const failed = await failing;
      // The server's FATAL 57P01 comes first, or the driver finds its socket closed: either way NOT_READY.
      assertStoreError(failed, 'NOT_READY', '57P01', undefined);
      assert.equal(serverAnswered(failed), false);
    }
    assert.equal(await pgdb.read(async (sql) => (await sql.get('SELECT 1 AS ok'))?.ok), 1, 'a fresh connection serves the next call');
  });

  it('is NOT_READY when the way to the server is cut mid-call, and while nothing answers', async () => {
    const clock = new VirtualClock();
    const link = await relay(db.url);
    try {
      const pgdb = await open(clock, { url: link.url });
      let started = false;
      const failing = rejection(
        pgdb.read(async (sql) => ((started = true), sql.get('SELECT pg_sleep(2)'))),
        clock,
      );
      await until(() => started, 'the call to start');
      await new Promise((r) => setTimeout(r, 50));
      link.cut();
      assertStoreError(await failing, 'NOT_READY', undefined);
      await link.close();
      const refused = await rejection(pgdb.tx((tx) => tx.get('SELECT 1')), clock);
      assertStoreError(refused, 'NOT_READY', undefined);
      assert.equal((refused.cause as { code?: unknown }).code, 'ECONNREFUSED');
    } finally {
      await link.close();
    }
  });

  it('is STORE_BUSY when no pooled connection comes free in time', async () => {
    const clock = new VirtualClock();
    const pool = new pg.Pool({ connectionString: db.url, max: 1, connectionTimeoutMillis: 100 });
    try {
      const pgdb = await open(clock, { url: undefined, pool });
      const gate = Promise.withResolvers<void>();
      const holding = pgdb.tx(() => gate.promise);
      const failed = await rejection(pgdb.read((sql) => sql.get('SELECT 1')), clock);
      assertStoreError(failed, 'STORE_BUSY', undefined);
      assert.equal(serverAnswered(failed), true, 'nothing was sent');
      gate.resolve();
      await holding;
    } finally {
      await pool.end();
    }
  });

  it('is NOT_READY once closed', async () => {
    const clock = new VirtualClock();
    const pgdb = await open(clock);
    await pgdb.close();
    for (const call of [pgdb.read.bind(pgdb), pgdb.tx.bind(pgdb)]) {
      assert.ok(isGafferError(await rejection(call((sql) => sql.get('SELECT 1')), clock), 'NOT_READY'));
    }
  });
});
