// docs/tutorials/rabbitmq-rpc.md, run as written: every ```sh block in order,
// in one shell from the repository's root, against a broker of the test's own
// (AMQP_URL) and a free port for the coordinator (GAFFER_PORT), as the tutorial
// lets a reader choose. Needs rabbitmq-server like the bridge's other services
// tests, and fails, never skips, without it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cleanEnv, freePort } from '../cli/testing.ts';
import { RABBIT_HELP, rabbitServerBin, startRabbit, type Rabbit } from './testing.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TUTORIAL = fileURLToPath(new URL('../../docs/tutorials/rabbitmq-rpc.md', import.meta.url));
const RUN_BOUND_MS = 300_000;

/** The tutorial's shell blocks, in order, as one script that stops at the first failing command. */
function tutorialScript(markdown: string): string {
  const blocks = [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return ['set -e', ...blocks].join('\n');
}

let rabbit: Rabbit;

before(async () => {
  assert.ok(rabbitServerBin() !== null, `rabbitmq-server was not found. ${RABBIT_HELP}`);
  rabbit = await startRabbit();
});
after(async () => {
  await rabbit?.destroy();
});

it('docs/tutorials/rabbitmq-rpc.md works as written', { timeout: RUN_BOUND_MS + 30_000 }, async () => {
  const script = tutorialScript(readFileSync(TUTORIAL, 'utf8'));
  const env = cleanEnv({ AMQP_URL: rabbit.url, GAFFER_PORT: String(await freePort()) });
  // Its own process group: whatever the script left running when it failed goes with it.
  const shell = spawn('bash', ['-c', script], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  shell.stdout.on('data', (c: Buffer) => (out += c.toString()));
  shell.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const killGroup = (): void => {
    try {
      process.kill(-shell.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(killGroup, RUN_BOUND_MS);
  const code = await new Promise<number | null>((resolve) => shell.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  killGroup();
  assert.equal(code, 0, out);
  assert.equal(out.match(/ \[\.\] Got 832040/g)?.length, 3, `fib(30) from the old server, the bridge and the SDK:\n${out}`);
  for (const fib of ['9227465', '14930352', '24157817', '39088169']) assert.match(out, new RegExp(` \\[\\.\\] Got ${fib}\\b`));
  assert.match(out, / \[\.\] Got \{"error":\{"code":"HANDLER_ERROR"/);
  assert.match(out, /fib\s+succeeded/);
});
