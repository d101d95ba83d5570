// Configuration layering: the TOML file, then the environment, then flags.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { isGafferError } from '../types/errors.ts';
import { describeDb, isPostgresUrl, serveConfig, TRACE_TOLERANCE_DEFAULT } from './config.ts';
import { splitWorkers, workerPlan } from './worker.ts';

const dir = mkdtempSync(join(tmpdir(), 'gaffer-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('serve config', () => {
  const toml = file(
    'gaffer.toml',
    `[server]
host = "10.0.0.5"
port = 9000
db = "/srv/file.db"

[[tokens]]
name = "provers"
token = "t-worker"
scopes = ["worker"]

[[tokens]]
name = "volunteers"
operator = "lab-b"
token = "t-volunteer"
scopes = ["worker"]

[queues."prove.outer"]
maxAttempts = 5
backoffBaseMs = 100
backoffMaxMs = 2000
`,
  );

  it('takes the file when nothing overrides it', () => {
    const c = serveConfig({ config: toml }, {});
    assert.deepEqual([c.host, c.port, c.db], ['10.0.0.5', 9000, '/srv/file.db']);
    assert.deepEqual(c.tokens, [
      { token: 't-worker', scopes: ['worker'], name: 'provers' },
      { token: 't-volunteer', scopes: ['worker'], name: 'volunteers', operator: 'lab-b' },
    ]);
    assert.deepEqual(c.queues['prove.outer'], { maxAttempts: 5, backoff: { baseMs: 100, maxMs: 2000 } });
  });

  it('lets the environment override the file, and flags override both', () => {
    const env = { GAFFER_PORT: '9100', GAFFER_DB: '/env.db', GAFFER_TOKEN: 'env-token' };
    const fromEnv = serveConfig({ config: toml }, env);
    assert.deepEqual([fromEnv.host, fromEnv.port, fromEnv.db], ['10.0.0.5', 9100, '/env.db']);
    assert.equal(fromEnv.tokens.length, 1);
    assert.equal(fromEnv.tokens[0]!.token, 'env-token', 'GAFFER_TOKEN replaces the file tokens');
    const fromFlags = serveConfig({ config: toml, port: '9200', host: '127.0.0.1', token: 'flag-token' }, env);
    assert.deepEqual([fromFlags.host, fromFlags.port, fromFlags.db, fromFlags.tokens[0]!.token], ['127.0.0.1', 9200, '/env.db', 'flag-token']);
  });

  it('uses the defaults with no file, environment or flags', () => {
    const c = serveConfig({}, {});
    assert.deepEqual([c.host, c.port, c.db, c.tokens], ['127.0.0.1', 7070, '.gaffer/gaffer.db', []]);
  });

  it('refuses a bad file with a clear, typed error', () => {
    const bad = [
      file('broken.toml', 'this is = = not toml'),
      file('badport.toml', '[server]\nport = "high"'),
      file('badscope.toml', '[[tokens]]\ntoken = "x"\nscopes = ["root"]'),
      file('halfbackoff.toml', '[queues.q]\nbackoffBaseMs = 5'),
    ];
    for (const path of bad) assert.throws(() => serveConfig({ config: path }, {}), (e) => isGafferError(e, 'INVALID_INPUT'), path);
    assert.throws(() => serveConfig({ config: join(dir, 'missing.toml') }, {}), /cannot read config file/);
  });
});

describe('serve config: trust', () => {
  const toml = file(
    'trust.toml',
    `[queues."prove.outer"]
replicas = 3
quorum = 2
adaptive = true
verify = { mode = "trace", tolerance = 0.35 }

[queues."prove.outer".challenge]
payload = { n = 7, label = "probe", steps = [1, 2, 3] }
answer = { square = 49 }
timeLimitMs = 60000

[queues."prove.inner"]
verify = { queue = "prove.inner.check" }

[queues."prove.sampled"]
replicas = 4
verify = { mode = "trace" }

[trust]
quarantineInvalidShare = 0.1
quarantineMinResults = 5
trustedStreakMin = 20
spotCheckProbability = 0.25
`,
  );

  it('reads verify, adaptive and a challenge per queue, and the [trust] settings given', () => {
    const c = serveConfig({ config: toml }, {});
    assert.deepEqual(c.queues['prove.outer'], {
      replicas: 3,
      quorum: 2,
      adaptive: true,
      verify: { mode: 'trace', tolerance: 0.35 },
      challenge: { payload: { n: 7, label: 'probe', steps: [1, 2, 3] }, answer: { square: 49 }, timeLimitMs: 60000 },
    });
    assert.deepEqual(c.queues['prove.inner'], { verify: { mode: 'queue', queue: 'prove.inner.check' } });
    assert.deepEqual(c.queues['prove.sampled'], { replicas: 4, verify: { mode: 'trace', tolerance: TRACE_TOLERANCE_DEFAULT } });
    assert.deepEqual(c.trust, { quarantineInvalidShare: 0.1, quarantineMinResults: 5, trustedStreakMin: 20, spotCheckProbability: 0.25 });
    // Plain JSON, as the coordinator hashes the answer: no prototype-less TOML tables left.
    assert.equal(Object.getPrototypeOf(c.queues['prove.outer']!.challenge!.answer), Object.prototype);
  });

  it('reads a queue backlog: its target and the filler job, checked with the queue defaults', () => {
    const path = file(
      'backlog.toml',
      `[queues.seal]
maxAttempts = 2
[queues.seal.backlog]
target = 4
priority = -500
payload = { kind = "cc" }
requires = { cores = 8, labels = { tier = "sealer" } }
`,
    );
    const c = serveConfig({ config: path }, {});
    assert.deepEqual(c.queues.seal, {
      maxAttempts: 2,
      backlog: { target: 4, job: { priority: -500, payload: { kind: 'cc' }, requires: { cores: 8, labels: { tier: 'sealer' } } } },
    });
    const cases: [string, RegExp][] = [
      ['[queues.q.backlog]\npriority = 1', /^queues\.q\.backlog\.target is required/],
      ['[queues.q.backlog]\ntarget = -1', /^queues\.q\.backlog\.target must be 0 to 10000$/],
      ['[queues.q.backlog]\ntarget = 1\nreplicas = 2', /^queues\.q\.backlog\.replicas is not a backlog setting/],
      ['[queues.q.backlog]\ntarget = 1\npriority = "low"', /^queues\.q\.backlog\.priority must be integer/],
    ];
    cases.forEach(([text, message], i) => {
      const bad = file(`bad-backlog-${i}.toml`, text);
      assert.throws(() => serveConfig({ config: bad }, {}), (e) => isGafferError(e, 'INVALID_INPUT') && message.test(e.message), text);
    });
  });

  it('leaves trust out when the file has no [trust] section', () => {
    assert.equal('trust' in serveConfig({}, {}), false);
    assert.deepEqual(serveConfig({ config: file('empty-trust.toml', '[trust]\n') }, {}).trust, {});
  });

  it('refuses a bad trust setting, verify or challenge with an error naming it', () => {
    const cases: [string, RegExp][] = [
      ['[trust]\nquarantineInvalidShare = 1.5', /^trust\.quarantineInvalidShare must be a number in \[0, 1\] \(got 1\.5\)$/],
      ['[trust]\nquarantineMinResults = 2.5', /^trust\.quarantineMinResults must be an integer >= 0/],
      ['[trust]\ntraceWaypoints = 0', /^trust\.traceWaypoints must be an integer >= 1/],
      ['[trust]\nspotCheckProbability = "often"', /^trust\.spotCheckProbability must be a number$/],
      ['[trust]\nquarantineShare = 0.3', /^trust\.quarantineShare is not a trust setting; the settings are extraReplicasMax, /],
      ['trust = 3', /^trust must be a table$/],
      ['[queues.q]\nverify = { mode = "trace", tolerance = 0.2 }', /^queues\.q\.verify trace needs at least 3 replicas \(got 1\)/],
      ['[queues.q]\nreplicas = 3\nverify = { mode = "trace", tolerance = -1 }', /^queues\.q\.verify\.tolerance must be 0 or more$/],
      ['[queues.q]\nreplicas = 3\nverify = { mode = "trace", queue = "x" }', /trace verification takes a tolerance, not a queue/],
      ['[queues.q]\nreplicas = 2\nverify = { queue = "q.check" }', /^queues\.q\.verify queue checks one result at a time: replicas must be 1 \(got 2\)/],
      ['[queues.q]\nverify = { mode = "queue" }', /^queues\.q\.verify\.queue is required/],
      ['[queues.q]\nverify = { mode = "vote" }', /^queues\.q\.verify must be \{ mode = "trace", tolerance = N \} or \{ queue = "NAME" \}$/],
      ['[queues.q]\nverify = "trace"', /^queues\.q\.verify must be a table$/],
      ['[queues.q]\nadaptive = "yes"', /^queues\.q\.adaptive must be true or false$/],
      ['[queues.q]\nreplicas = 2\nquorum = 3', /^queues\.q\.quorum \(3\) cannot exceed replicas \(2\)$/],
      ['[queues.q]\ntimeoutMs = 0', /^queues\.q\.timeoutMs must be >= 1$/],
      ['[queues.q.challenge]\nanswer = 1', /^queues\.q\.challenge\.timeLimitMs is required$/],
      ['[queues.q.challenge]\ntimeLimitMs = 1000', /^queues\.q\.challenge\.answer is required/],
      ['[queues.q.challenge]\nanswer = 1\ntimeLimitMs = 0', /^queues\.q\.challenge\.timeLimitMs must be at least 1$/],
      ['[queues.q.challenge]\nanswer = 1979-05-27\ntimeLimitMs = 1000', /^queues\.q\.challenge\.answer must be JSON-like/],
      ['[queues.q.challenge]\nanswer = 1\ntimeLimitMs = 1000\npayloads = 2', /^queues\.q\.challenge\.payloads is not a challenge setting/],
    ];
    cases.forEach(([text, message], i) => {
      const path = file(`bad-trust-${i}.toml`, text);
      assert.throws(() => serveConfig({ config: path }, {}), (e) => isGafferError(e, 'INVALID_INPUT') && message.test(e.message), text);
    });
  });

  it('keeps adaptive as a default on a queue of one replica (it applies to the jobs submitted with more)', () => {
    const c = serveConfig({ config: file('adaptive.toml', '[queues.q]\nadaptive = true\n') }, {});
    assert.deepEqual(c.queues.q, { adaptive: true });
  });
});

describe('serve config: retention', () => {
  it('reads the server default, each queue\'s own, and the worker retention', () => {
    const text = `[server]
workerRetentionDays = 2

[retention]
keepDays = 14
keepJobs = 1000000

[queues.fast.retention]
keepJobs = 100
archive = "/var/lib/gaffer/fast.jsonl"

[queues.audit.retention]
`;
    const c = serveConfig({ config: file('retention.toml', text) }, {});
    assert.deepEqual(c.retention, { keepDays: 14, keepJobs: 1_000_000 });
    assert.deepEqual(c.queues.fast, { retention: { keepJobs: 100, archive: '/var/lib/gaffer/fast.jsonl' } });
    assert.deepEqual(c.queues.audit, { retention: {} }, 'a table with neither limit keeps them for ever');
    assert.equal(c.workerRetentionMs, 2 * 24 * 3600 * 1000);
    const none = serveConfig({}, {});
    assert.deepEqual(['retention' in none, 'workerRetentionMs' in none], [false, false], 'the built-in defaults apply');
  });

  it('refuses a bad retention setting with an error naming it', () => {
    const cases: [string, RegExp][] = [
      ['[retention]\nkeepDays = 0', /^retention\.keepDays must be more than 0$/],
      ['[retention]\nkeepJobs = -1', /^retention\.keepJobs must be 0 or more$/],
      ['[retention]\nkeepJobs = 1.5', /^retention\.keepJobs must be a whole number$/],
      ['[queues.q.retention]\nkeepWeeks = 2', /^queues\.q\.retention\.keepWeeks is not a retention setting \(keepDays, keepJobs, archive\)$/],
      ['[queues.q]\nretention = 3', /^queues\.q\.retention must be a table$/],
      ['[server]\nworkerRetentionDays = 0', /^server\.workerRetentionDays must be more than 0$/],
    ];
    cases.forEach(([text, message], i) => {
      const path = file(`bad-retention-${i}.toml`, text);
      assert.throws(() => serveConfig({ config: path }, {}), (e) => isGafferError(e, 'INVALID_INPUT') && message.test(e.message), text);
    });
  });
});

describe('serve config: speculation', () => {
  it('reads the defaults of every queue and each queue\'s own; a queue may turn it off', () => {
    const text = `[speculation]
multiplier = 2
shareMax = 0.05

[queues.prove.speculation]
quantile = 0.5

[queues.seal.speculation]
enabled = false
`;
    const c = serveConfig({ config: file('speculation.toml', text) }, {});
    assert.deepEqual(c.speculation, { multiplier: 2, shareMax: 0.05 });
    assert.deepEqual(c.queues.prove, { speculation: { quantile: 0.5 } });
    assert.deepEqual(c.queues.seal, { speculation: { enabled: false } });
    assert.equal('speculation' in serveConfig({}, {}), false, 'on with the built-in defaults');
  });

  it('refuses a bad speculation setting with an error naming it', () => {
    const cases: [string, RegExp][] = [
      ['[speculation]\nquantile = 1.5', /^speculation\.quantile must be from 0 to 1$/],
      ['[speculation]\nshareMax = 0', /^speculation\.shareMax must be more than 0 and at most 1$/],
      ['[queues.q.speculation]\nmultiplier = 0.5', /^queues\.q\.speculation\.multiplier must be 1 or more$/],
      ['[queues.q.speculation]\nshareMax = 0.5', /^queues\.q\.speculation\.shareMax is not a speculation setting \(enabled, quantile, multiplier\)$/],
      ['[queues.q.speculation]\nenabled = "no"', /^queues\.q\.speculation\.enabled must be true or false$/],
    ];
    cases.forEach(([text, message], i) => {
      const path = file(`bad-speculation-${i}.toml`, text);
      assert.throws(() => serveConfig({ config: path }, {}), (e) => isGafferError(e, 'INVALID_INPUT') && message.test(e.message), text);
    });
  });
});

describe('serve config: SQLite sync', () => {
  it('takes sqliteSync from the file, the environment and flags, in that order; full is the store default', () => {
    assert.equal('sqliteSync' in serveConfig({ db: '/srv/g.db' }, {}), false);
    const toml = file('sync.toml', '[server]\nsqliteSync = "normal"\n');
    assert.equal(serveConfig({ config: toml }, {}).sqliteSync, 'normal');
    assert.equal(serveConfig({ config: toml }, { GAFFER_SQLITE_SYNC: 'full' }).sqliteSync, 'full');
    assert.equal(serveConfig({ config: toml, sqliteSync: 'normal' }, { GAFFER_SQLITE_SYNC: 'full' }).sqliteSync, 'normal');
  });

  it('refuses another mode, and the option with PostgreSQL', () => {
    assert.throws(() => serveConfig({ sqliteSync: 'off' }, {}), (e) => isGafferError(e, 'INVALID_INPUT'));
    assert.throws(() => serveConfig({ db: 'postgres://h/db', sqliteSync: 'normal' }, {}), (e) => isGafferError(e, 'INVALID_INPUT'));
  });
});

describe('serve config: queue history', () => {
  it('keeps history unless --no-history or server.history = false says otherwise', () => {
    assert.equal('history' in serveConfig({}, {}), false);
    assert.equal(serveConfig({ history: true }, {}).history, undefined);
    assert.equal(serveConfig({ history: false }, {}).history, false);
    assert.equal(serveConfig({ config: file('nohist.toml', '[server]\nhistory = false\n') }, {}).history, false);
    assert.throws(() => serveConfig({ config: file('badhist.toml', '[server]\nhistory = "no"\n') }, {}), (e) => isGafferError(e, 'INVALID_INPUT'));
  });
});

describe('serve config: PostgreSQL', () => {
  const url = 'postgres://gaffer:s3cret@db.internal:5432/gaffer';

  it('takes pgSchema and pgPoolMax from the file, the environment and flags, in that order', () => {
    const toml = file('pg.toml', `[server]\ndb = "${url}"\npgSchema = "from_file"\npgPoolMax = 4\n`);
    const fromFile = serveConfig({ config: toml }, {});
    assert.deepEqual([fromFile.db, fromFile.pgSchema, fromFile.pgPoolMax], [url, 'from_file', 4]);
    const env = { GAFFER_PG_SCHEMA: 'from_env', GAFFER_PG_POOL_MAX: '8' };
    const fromEnv = serveConfig({ config: toml }, env);
    assert.deepEqual([fromEnv.pgSchema, fromEnv.pgPoolMax], ['from_env', 8]);
    const fromFlags = serveConfig({ config: toml, pgSchema: 'from_flag', pgPoolMax: '16' }, env);
    assert.deepEqual([fromFlags.pgSchema, fromFlags.pgPoolMax], ['from_flag', 16]);
  });

  it('leaves both to the store when none is given, and accepts postgresql:// too', () => {
    const c = serveConfig({ db: 'postgresql://localhost/gaffer' }, {});
    assert.equal(isPostgresUrl(c.db), true);
    assert.equal('pgSchema' in c, false);
    assert.equal('pgPoolMax' in c, false);
    assert.equal(isPostgresUrl('.gaffer/gaffer.db'), false);
    assert.equal(isPostgresUrl('./postgres://odd-file-name'), false);
  });

  it('refuses a bad schema, a pool of no connections, and PostgreSQL options for a SQLite file', () => {
    const refused = (flags: Parameters<typeof serveConfig>[0], env: NodeJS.ProcessEnv = {}): void =>
      assert.throws(() => serveConfig(flags, env), (e) => isGafferError(e, 'INVALID_INPUT'), JSON.stringify(flags));
    refused({ db: url, pgSchema: 'drop table; --' });
    refused({ db: url, pgSchema: '1st' });
    refused({ db: url, pgPoolMax: '0' });
    refused({ db: url, pgPoolMax: 'many' });
    refused({ db: '/srv/gaffer.db', pgSchema: 'prod' });
    refused({ db: '/srv/gaffer.db' }, { GAFFER_PG_POOL_MAX: '4' });
  });

  it('prints and logs the database without its password', () => {
    assert.equal(describeDb(url), 'postgres://gaffer:***@db.internal:5432/gaffer');
    assert.equal(describeDb('postgres://gaffer@db.internal/gaffer'), 'postgres://gaffer@db.internal/gaffer');
    assert.equal(describeDb('/srv/gaffer.db'), '/srv/gaffer.db');
    assert.doesNotMatch(describeDb('postgres://u:p@[::1/x'), /p@/);
  });
});

describe('worker config', () => {
  const toml = file(
    'worker.toml',
    `urls = ["http://a:7070", "http://b:7070"]
token = "file-token"
name = "sealer-07"
cores = 64
memoryMb = 262144
gpus = [0, 1, 2]
keys = ["sector-1"]
tmpDir = "/scratch/tmp"

[labels]
zone = "eu-1"

[queues."seal.pc1"]
slots = 4
exec = "/opt/pc1"

[queues."seal.c2"]
slots = 1
exec = "/opt/c2"
gpus = [2]
cores = 16
outDir = "/data/c2"
`,
  );

  it('reads queues, resources, labels and keys from the file', () => {
    const p = workerPlan({ config: toml, logLevel: 'info' }, {});
    assert.deepEqual(p.urls, ['http://a:7070', 'http://b:7070']);
    assert.deepEqual([p.token, p.name, p.cores, p.memoryMb, p.gpus, p.keys, p.labels], ['file-token', 'sealer-07', 64, 262144, [0, 1, 2], ['sector-1'], { zone: 'eu-1' }]);
    assert.deepEqual(p.queues['seal.pc1'], { slots: 4, exec: '/opt/pc1' });
    assert.deepEqual(p.queues['seal.c2'], { slots: 1, exec: '/opt/c2', gpus: [2], cores: 16, outDir: '/data/c2' });
  });

  it('lets flags override the file and the environment', () => {
    const env = { GAFFER_URL: 'http://env:1,http://env:2', GAFFER_TOKEN: 'env-token' };
    const p = workerPlan(
      { config: toml, url: ['http://flag:7070'], queue: ['seal.pc1:8', 'extra:2'], exec: '/bin/other', gpus: '5', label: ['zone=us-2', 'rack=9'], logLevel: 'info' },
      env,
    );
    assert.deepEqual(p.urls, ['http://flag:7070']);
    assert.equal(p.token, 'env-token');
    assert.deepEqual(p.gpus, [5]);
    assert.deepEqual(p.labels, { zone: 'us-2', rack: '9' });
    assert.equal(p.queues['seal.pc1']!.slots, 8);
    assert.equal(p.queues.extra!.slots, 2);
    assert.ok(Object.values(p.queues).every((q) => q.exec === '/bin/other'), '--exec applies to every queue');
    assert.deepEqual(workerPlan({ queue: ['q'], exec: 'x', logLevel: 'info' }, env).urls, ['http://env:1', 'http://env:2']);
  });

  it('keeps worker ids beside the config by default; stateFile in the file and --state-file override it', () => {
    assert.equal(workerPlan({ config: toml, logLevel: 'info' }, {}).stateFile, join(dir, 'worker.state.json'));
    const own = file('own-state.toml', 'stateFile = "state/ids.json"\n[queues.q]\nexec = "x"\n');
    assert.equal(workerPlan({ config: own, logLevel: 'info' }, {}).stateFile, join(dir, 'state', 'ids.json'), 'relative to the config');
    assert.equal(workerPlan({ config: toml, stateFile: 'ids.json', logLevel: 'info' }, {}).stateFile, resolve('ids.json'));
    assert.equal(workerPlan({ queue: ['q'], exec: 'x', logLevel: 'info' }, {}).stateFile, undefined, 'no config, no flag: none');
  });

  it('runs a queue with its own GPUs or cores as a logical worker of its own', () => {
    const split = splitWorkers(workerPlan({ config: toml, logLevel: 'info' }, {}));
    assert.deepEqual(
      split.map((w) => [w.name, w.gpus, w.cores, Object.keys(w.queues)]),
      [
        ['sealer-07', [0, 1, 2], 64, ['seal.pc1']],
        ['sealer-07/seal.c2', [2], 16, ['seal.c2']],
      ],
    );
  });

  it('refuses a worker with no queue, a queue with no runner, or a bad flag', () => {
    assert.throws(() => workerPlan({ logLevel: 'info' }, {}), /at least one queue/);
    assert.throws(() => workerPlan({ queue: ['q:2'], logLevel: 'info' }, {}), /--exec CMD, --module FILE/);
    assert.throws(() => workerPlan({ queue: ['q:x'], exec: 'c', logLevel: 'info' }, {}), /NAME or NAME:SLOTS/);
    assert.throws(() => workerPlan({ queue: ['q'], exec: 'c', gpus: '0,a', logLevel: 'info' }, {}), /not a GPU id/);
    assert.throws(() => workerPlan({ queue: ['q'], exec: 'c', label: ['novalue'], logLevel: 'info' }, {}), /key=value/);
  });
});
