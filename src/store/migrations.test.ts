// Both stores' migrations: one numbering (the same versions, in order, under
// the same names), and each store's migrate() brings an empty database, and a
// database left at every older version, to the same schema as a fresh one.
// SQLite files are built with node:sqlite in a temp dir by applying the first
// k migrations as the released code did; PostgreSQL schemas likewise, one
// fresh schema per case on the test server.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { seededRandom, VirtualClock } from '../types/clock.ts';
import { PgDb } from './postgres/db.ts';
import { MIGRATIONS as POSTGRES_MIGRATIONS } from './postgres/schema.ts';
import { testDatabase, testDatabaseUrl } from './postgres/testing.ts';
import { SqliteDb } from './sqlite/db.ts';
import { RENUMBERED, MIGRATIONS as SQLITE_MIGRATIONS } from './sqlite/schema.ts';

interface Migration {
  version: number;
  name: string;
  sql: string;
}

type VersionName = [version: number, name: string];

const recordsOf = (ms: readonly Migration[]): VersionName[] => ms.map((m) => [m.version, m.name]);

/** The statements of a migration's SQL, with its comments and blank lines taken out. */
const statementsOf = (sql: string): string =>
  sql
    .split('\n')
    .filter((line) => !/^\s*(--.*)?$/.test(line))
    .join('\n');

describe('migrations: one numbering for both stores', () => {
  it('has the same versions, in order, under the same names', () => {
    assert.deepEqual(recordsOf(SQLITE_MIGRATIONS), recordsOf(POSTGRES_MIGRATIONS));
    assert.deepEqual(
      SQLITE_MIGRATIONS.map((m) => m.version),
      SQLITE_MIGRATIONS.map((_, i) => i + 1),
      'numbered 1, 2, 3, ... without gaps',
    );
  });

  it('moves a SQLite record only to its shared number and only over no-ops', () => {
    for (const r of RENUMBERED) {
      assert.equal(SQLITE_MIGRATIONS.find((m) => m.version === r.toVersion)?.name, r.name);
      const skipped = SQLITE_MIGRATIONS.filter((m) => m.version >= r.fromVersion && m.version < r.toVersion);
      assert.ok(skipped.length > 0, `${r.name}: moves over at least one version`);
      for (const m of skipped) assert.equal(statementsOf(m.sql), '', `SQLite migration ${m.version} must be a no-op`);
    }
  });
});

// ---- SQLite ----

/** A file as the released code left it: these migrations run, each recorded under the given version. */
function sqliteFileAt(path: string, applied: readonly Migration[]): void {
  const db = new DatabaseSync(path);
  try {
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    for (const m of applied) {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, m.version);
    }
  } finally {
    db.close();
  }
}

/** Every table, index and trigger of a file, as SQLite keeps their definitions. */
function sqliteSchema(db: SqliteDb): unknown[] {
  return db.all(`SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`);
}

function sqliteRecords(db: SqliteDb): { version: number; name: string; applied_at: number }[] {
  return db.all('SELECT version, name, applied_at FROM schema_migrations ORDER BY version') as { version: number; name: string; applied_at: number }[];
}

describe('sqlite migrations', () => {
  let dir: string;
  let fresh: unknown[];
  const clock = new VirtualClock();

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-migrations-'));
    const db = new SqliteDb({ path: join(dir, 'fresh.db'), clock });
    fresh = sqliteSchema(db);
    db.close();
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Opens the file as the store does, checks it against a fresh one, and returns its records. */
  function migrated(path: string): ReturnType<typeof sqliteRecords> {
    const db = new SqliteDb({ path, clock });
    try {
      assert.deepEqual(sqliteSchema(db), fresh, 'the same tables, columns, indexes and triggers as a fresh file');
      const records = sqliteRecords(db);
      assert.deepEqual(records.map((r) => [r.version, r.name]), recordsOf(SQLITE_MIGRATIONS));
      return records;
    } finally {
      db.close();
    }
  }

  for (let k = 0; k < SQLITE_MIGRATIONS.length; k++) {
    it(`migrates a file left at version ${k}`, () => {
      const path = join(dir, `at-${k}.db`);
      if (k > 0) sqliteFileAt(path, SQLITE_MIGRATIONS.slice(0, k));
      const records = migrated(path);
      for (const r of records) assert.equal(r.applied_at, r.version <= k ? r.version : clock.now(), `applied_at of ${r.version}`);
    });
  }

  it('migrates a file the released code numbered apart (has_dependants as 5), without running it again', () => {
    const path = join(dir, 'released-5.db');
    const hasDependants = SQLITE_MIGRATIONS.find((m) => m.name === 'jobs know whether anything depends on them')!;
    sqliteFileAt(path, [...SQLITE_MIGRATIONS.slice(0, 4), { ...hasDependants, version: 5 }]);
    const records = migrated(path);
    const moved = records.find((r) => r.name === hasDependants.name)!;
    assert.deepEqual([moved.version, moved.applied_at], [hasDependants.version, 5], 'the released record, under its shared number');
  });

  it('applies nothing when opened again', () => {
    const path = join(dir, 'twice.db');
    const first = migrated(path);
    assert.deepEqual(migrated(path), first);
  });
});

// ---- PostgreSQL ----

/** Schema-qualified names carry the test schema's random name: replaced, so that two schemas compare. */
const unqualified = (schema: string, rows: unknown[]): unknown[] => JSON.parse(JSON.stringify(rows).replaceAll(schema, 'S')) as unknown[];

/** Columns, constraints, indexes, triggers and functions of a schema. */
async function pgSchema(client: pg.Client, schema: string): Promise<unknown[]> {
  const queries = [
    `SELECT table_name, ordinal_position, column_name, data_type, is_nullable, column_default, collation_name
       FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position`,
    `SELECT c.relname, con.conname, pg_get_constraintdef(con.oid) AS def
       FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 ORDER BY c.relname, con.conname`,
    'SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY tablename, indexname',
    `SELECT t.tgname, pg_get_triggerdef(t.oid) AS def
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND NOT t.tgisinternal ORDER BY t.tgname`,
    `SELECT p.proname, pg_get_functiondef(p.oid) AS def
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 ORDER BY p.proname`,
  ];
  const out: unknown[] = [];
  for (const q of queries) out.push(unqualified(schema, (await client.query(q, [schema])).rows));
  return out;
}

async function pgRecords(client: pg.Client, schema: string): Promise<{ version: number; name: string; applied_at: string }[]> {
  return (await client.query(`SELECT version, name, applied_at FROM ${schema}.schema_migrations ORDER BY version`)).rows;
}

/** A schema as the released code left it: the first k migrations run and recorded. */
async function pgSchemaAt(client: pg.Client, schema: string, k: number): Promise<void> {
  await client.query(`SET search_path TO ${schema}`);
  await client.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
  for (const m of POSTGRES_MIGRATIONS.slice(0, k)) {
    await client.query(m.sql);
    await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, m.version]);
  }
  await client.query('RESET search_path');
}

describe('postgres migrations', () => {
  let url: string;
  let client: pg.Client;
  let fresh: unknown[];
  const dropped: (() => Promise<void>)[] = [];
  const clock = new VirtualClock();
  const open = (schema: string, storeId: string) => PgDb.open({ url, schema, clock, random: seededRandom(1) }, storeId);

  before(async () => {
    url = await testDatabaseUrl();
    client = new pg.Client({ connectionString: url });
    await client.connect();
    const db = await testDatabase();
    dropped.push(db.drop);
    await (await open(db.schema, 'fresh')).close();
    fresh = await pgSchema(client, db.schema);
  });

  after(async () => {
    for (const drop of dropped) await drop();
    await client.end();
  });

  for (let k = 0; k < POSTGRES_MIGRATIONS.length; k++) {
    it(`migrates a schema left at version ${k}`, async () => {
      const db = await testDatabase();
      dropped.push(db.drop);
      await pgSchemaAt(client, db.schema, k);
      await (await open(db.schema, `at-${k}`)).close();
      assert.deepEqual(await pgSchema(client, db.schema), fresh, 'the same columns, constraints, indexes, triggers and functions as a fresh schema');
      const records = await pgRecords(client, db.schema);
      assert.deepEqual(records.map((r) => [r.version, r.name]), recordsOf(POSTGRES_MIGRATIONS));
      for (const r of records) assert.equal(Number(r.applied_at), r.version <= k ? r.version : clock.now(), `applied_at of ${r.version}`);
    });
  }
});
