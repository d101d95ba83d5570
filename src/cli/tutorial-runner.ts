// Runs a tutorial's steps (markdown-steps.ts) as a reader would: in a fresh
// copy of the repository's root (a sandbox of symlinks, so `.gaffer/` and the
// files a tutorial writes land there), in ONE bash session fed step by step,
// so that `export`s, variables and `jobs` carry over from block to block. The
// ports the document names become free ports of 127.0.0.1.
//
// Every wait is bounded. When the document ends, or fails, everything it
// started is stopped: the session's process tree gets SIGTERM (what Ctrl-C in
// each terminal would do: coordinators shut down, workers drain, a throwaway
// PostgreSQL removes its files), then SIGKILL after a grace; a process still
// running in the sandbox after that (one that left the tree, e.g. a server
// started with pg_ctl) is killed too and reported as left running.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { freePort } from '../store/postgres/cluster.ts';
import { parseTutorial, STEP_DEFAULTS, withPorts, type Step, type TutorialDoc } from './markdown-steps.ts';

export const RUNNER_BOUNDS = {
  /** After SIGTERM, how long the document's processes have before SIGKILL. */
  stopGraceMs: 30_000,
  pollMs: 200,
  /** How often a running step's process tree is noted (see Session.remember). */
  rememberEveryMs: 2_000,
  /** Output of a step kept for a failure's message. */
  tailChars: 4_000,
} as const;

export interface RunOptions {
  /** The repository's root: its entries are linked into the sandbox. */
  repo: string;
  /** Run the session as this user (the test runs as root): uid, gid and a name for messages. */
  as?: { uid: number; gid: number; name: string };
  /** Progress lines (a step started). */
  log?: (line: string) => void;
  /** Each step's result as it ends (to see the steps before a failure). */
  onStep?: (result: StepResult) => void;
}

export interface StepResult {
  line: number;
  output: string;
  ms: number;
}

/** Every step's output; throws at the first step that fails, with its line, code and output. */
export async function runTutorial(name: string, doc: TutorialDoc, options: RunOptions): Promise<StepResult[]> {
  const ports = new Map<number, number>();
  for (const p of doc.ports) ports.set(p, await freePort());
  const root = mkdtempSync(join(tmpdir(), 'gaffer-tutorial-'));
  const session = new Session(root, options);
  live.add(session);
  const results: StepResult[] = [];
  let failure: unknown = null;
  try {
    await session.start();
    for (const original of doc.steps) {
      const step = withPorts(original, ports);
      if (step.skip !== null) continue;
      const started = Date.now();
      options.log?.(`${name}:${step.line} ${step.background ? 'background' : 'run'}: ${step.code.split('\n')[0]}`);
      const output = await session.run(step, `${name}:${step.line}`);
      session.remember();
      const result = { line: step.line, output, ms: Date.now() - started };
      results.push(result);
      options.onStep?.(result);
    }
  } catch (err) {
    failure = err;
  }
  const leftovers = await session.stop();
  live.delete(session);
  // A throwaway PostgreSQL (gaffer dev-postgres) removes its files when it stops.
  const tmp = join(session.work, '.tmp');
  for (const f of existsSync(tmp) ? readdirSync(tmp) : []) if (f.startsWith('gaffer-pg-')) leftovers.push(`files of a PostgreSQL server: ${join(tmp, f)}`);
  rmSync(root, { recursive: true, force: true });
  if (failure) throw failure;
  if (leftovers.length > 0) throw new Error(`${name}: left behind after the document's processes were stopped (killed and removed now):\n${leftovers.join('\n')}`);
  return results;
}

/** Sessions not stopped yet: if this process exits first (a test's timeout), their processes are killed on the way out. */
const live = new Set<Session>();
process.once('exit', () => {
  for (const session of live) session.killNow();
});

class Session {
  readonly work: string;
  readonly harness: string;
  private bash: ChildProcess | null = null;
  private control = '';
  private exited = false;
  private seq = 0;
  /** Files holding the pids of the background blocks, which are not the session's children. */
  private readonly backgrounds: string[] = [];

  readonly root: string;
  readonly options: RunOptions;

  constructor(root: string, options: RunOptions) {
    this.root = root;
    this.options = options;
    this.work = join(root, 'work');
    this.harness = join(root, 'harness');
  }

  async start(): Promise<void> {
    const { as, repo } = this.options;
    for (const dir of [this.work, this.harness, join(this.work, '.tmp'), join(this.work, '.home')]) mkdirSync(dir, { recursive: true });
    // Readable and traversable by other users: a PostgreSQL run as nobody keeps its files in the sandbox's temp dir.
    for (const dir of [this.root, this.work, this.harness]) chmodSync(dir, 0o755);
    for (const entry of readdirSync(repo)) {
      if (entry === '.git' || entry === '.gaffer') continue;
      symlinkSync(resolve(repo, entry), join(this.work, entry));
    }
    if (as) for (const dir of [this.work, join(this.work, '.tmp'), join(this.work, '.home'), this.harness]) chownSync(dir, as.uid, as.gid);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GAFFER_') && !k.startsWith('npm_') && !k.startsWith('NODE_')) env[k] = v;
    Object.assign(env, { TMPDIR: join(this.work, '.tmp'), NPM_CONFIG_UPDATE_NOTIFIER: 'false', NPM_CONFIG_FUND: 'false', NPM_CONFIG_AUDIT: 'false' });
    if (as) Object.assign(env, { HOME: join(this.work, '.home'), USER: as.name, LOGNAME: as.name });
    const bash = spawn('bash', ['--noprofile', '--norc'], { cwd: this.work, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true, ...(as ? { uid: as.uid, gid: as.gid } : {}) });
    this.bash = bash;
    bash.stdout!.setEncoding('utf8').on('data', (c: string) => (this.control += c));
    bash.stderr!.setEncoding('utf8').on('data', (c: string) => (this.control += c));
    bash.once('exit', () => (this.exited = true));
    // A failed command anywhere in a step is written down (ERR does not fire in conditions, as with set -e).
    this.send(`__gaffer_errs=${quote(join(this.harness, 'errors'))}\ntrap 'printf "exit %s: %s\\n" "$?" "$BASH_COMMAND" >> "$__gaffer_errs"' ERR\n`);
  }

  private send(text: string): void {
    if (this.exited) throw new Error('the bash session has ended');
    this.bash!.stdin!.write(text);
  }

  /** Runs one step; resolves with its output once its expectations hold. */
  async run(step: Step, where: string): Promise<string> {
    const n = ++this.seq;
    const script = join(this.harness, `${n}.sh`);
    const out = join(this.harness, `${n}.out`);
    if (step.file !== null) {
      const path = resolve(this.work, step.file);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, step.code);
      if (this.options.as) chownSync(path, this.options.as.uid, this.options.as.gid);
      return '';
    }
    writeFileSync(script, step.code);
    const boundMs = step.withinMs ?? (step.background ? STEP_DEFAULTS.backgroundMs : STEP_DEFAULTS.foregroundMs);
    const deadline = Date.now() + boundMs;
    const fail = (why: string, output: string): never => {
      throw new Error(`${where}: ${why}\n--- the block:\n${step.code}--- its output (the end):\n${output.slice(-RUNNER_BOUNDS.tailChars)}`);
    };
    if (step.background) {
      // As in another terminal: not a job of this shell (so `wait` and `jobs` pass it by), but started from its state.
      const pidFile = join(this.harness, `${n}.pid`);
      this.send(`( { . ${quote(script)}; } > ${quote(out)} 2>&1 < /dev/null & echo $! > ${quote(pidFile)} )\n`);
      this.backgrounds.push(pidFile);
      for (;;) {
        const output = readIfThere(out);
        if (step.expect.every((re) => re.test(output))) return output;
        if (Date.now() > deadline) fail(`the background block's output did not match ${step.expect.join(', ')} within ${boundMs / 1000} s`, output);
        if (this.exited) fail('the bash session ended', output + this.control);
        await sleep(RUNNER_BOUNDS.pollMs);
      }
    }
    for (;;) {
      writeFileSync(join(this.harness, 'errors'), '');
      const status = await this.runOnce(script, out, n, deadline);
      const output = readIfThere(out);
      if (status === null) fail(`did not end within ${boundMs / 1000} s`, output);
      const errors = readIfThere(join(this.harness, 'errors'));
      const matches = [...step.expect, ...(step.until ? [step.until] : [])].every((re) => re.test(output));
      if (step.until && !matches && Date.now() + STEP_DEFAULTS.retryIntervalMs < deadline) {
        await sleep(STEP_DEFAULTS.retryIntervalMs);
        continue;
      }
      if (step.status !== null ? status !== step.status : errors !== '') {
        fail(step.status !== null ? `exited ${status}, not ${step.status}` : `a command failed:\n${errors}`, output);
      }
      if (!matches) fail(`its output does not match ${[...step.expect, ...(step.until ? [step.until] : [])].join(', ')}${step.until ? ` (within ${boundMs / 1000} s)` : ''}`, output);
      return output;
    }
  }

  /** One run of a foreground step: its exit status, or null when the deadline passed first. */
  private async runOnce(script: string, out: string, n: number, deadline: number): Promise<number | null> {
    const marker = `__gaffer_done_${n}_${Math.random().toString(36).slice(2)}`;
    const from = this.control.length;
    this.send(`{ . ${quote(script)}; } > ${quote(out)} 2>&1 < /dev/null; echo "${marker} $?"\n`);
    const re = new RegExp(`${marker} (\\d+)`);
    while (Date.now() < deadline) {
      const m = re.exec(this.control.slice(from));
      if (m) return Number(m[1]);
      if (Date.now() - this.rememberedAt > RUNNER_BOUNDS.rememberEveryMs) this.remember();
      if (this.exited) throw new Error(`the bash session ended:\n${this.control.slice(-RUNNER_BOUNDS.tailChars)}`);
      await sleep(RUNNER_BOUNDS.pollMs);
    }
    return null;
  }

  /** Every process seen below the session, so that one orphaned later (its parent killed) is still stopped. */
  private readonly seen: Pid[] = [];
  private rememberedAt = 0;

  /** Notes the processes running below the session now. */
  remember(): void {
    this.rememberedAt = Date.now();
    if (this.bash?.pid === undefined) return;
    for (const p of [this.bash.pid, ...this.backgroundPids()].flatMap(descendants)) {
      if (!this.seen.some((q) => q.pid === p.pid && q.start === p.start)) this.seen.push(p);
    }
  }

  /** SIGKILL to everything the session started, at once (in an exit hook: nothing can be awaited). */
  killNow(): void {
    const roots = this.bash?.pid === undefined ? [] : [this.bash.pid, ...this.backgroundPids()];
    signalAll([...this.seen, ...roots.flatMap(descendants), ...roots.map((pid) => ({ pid, start: startTime(pid) })), ...inSandbox(this.root)], 'SIGKILL');
    rmSync(this.root, { recursive: true, force: true });
  }

  private backgroundPids(): number[] {
    return this.backgrounds.map((f) => Number(readIfThere(f).trim())).filter((pid) => pid > 0);
  }

  /** Stops everything the document started; returns what had to be killed outside the session's tree. */
  async stop(): Promise<string[]> {
    const bash = this.bash;
    if (bash?.pid !== undefined && !this.exited) {
      const tree = [...this.seen, ...[bash.pid, ...this.backgroundPids()].flatMap(descendants)];
      for (const pid of this.backgroundPids()) tree.push({ pid, start: startTime(pid) });
      // As a terminal's Ctrl-C: only the session's processes. A server that left the session (setsid, as pg_ctl
      // starts PostgreSQL) is stopped by the process that started it, and killed below if it is not.
      signalAll(tree.filter((p) => stat(p.pid)?.[3] === String(bash.pid)), 'SIGTERM');
      const until = Date.now() + RUNNER_BOUNDS.stopGraceMs;
      while (Date.now() < until && tree.some(alive)) await sleep(RUNNER_BOUNDS.pollMs);
      signalAll([...tree, ...[bash.pid, ...this.backgroundPids()].flatMap(descendants), { pid: bash.pid, start: startTime(bash.pid) }], 'SIGKILL');
      try {
        process.kill(-bash.pid, 'SIGKILL');
      } catch {
        // the group is gone
      }
      const until2 = Date.now() + RUNNER_BOUNDS.stopGraceMs;
      while (Date.now() < until2 && !this.exited) await sleep(RUNNER_BOUNDS.pollMs);
    }
    const stray = inSandbox(this.root);
    signalAll(stray, 'SIGKILL');
    return stray.map((p) => `${p.pid} ${cmdline(p.pid)}`);
  }
}

// ---- Processes, from /proc (Linux) ----

interface Pid {
  pid: number;
  start: string | null;
}

function readIfThere(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

function stat(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: the fields after it follow the last ')'.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The start time of a process (field 22 of /proc/PID/stat), so that a reused pid is never signalled. */
function startTime(pid: number): string | null {
  return stat(pid)?.[19] ?? null;
}

function allPids(): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

/** Every process below `root`, with their start times. */
function descendants(root: number): Pid[] {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const ppid = Number(stat(pid)?.[1]);
    if (!Number.isNaN(ppid)) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const found: Pid[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    found.push({ pid, start: startTime(pid) });
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '?';
  }
}

/** Processes whose working directory or command line lies in the sandbox. */
function inSandbox(root: string): Pid[] {
  const found: Pid[] = [];
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    let cwd = '';
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // not ours to read, or gone
    }
    if (cwd.startsWith(root) || cmdline(pid).includes(root)) found.push({ pid, start: startTime(pid) });
  }
  return found;
}

/** Running (a zombie is not), and the same process as when it was seen. */
function alive(p: Pid): boolean {
  const fields = stat(p.pid);
  return p.start !== null && fields !== null && fields[0] !== 'Z' && fields[19] === p.start;
}

/** Signals each process once, however often it is listed (a second SIGTERM can cut a clean-up short). */
function signalAll(pids: readonly Pid[], signal: NodeJS.Signals): void {
  const done = new Set<number>();
  for (const p of pids) {
    if (done.has(p.pid) || !alive(p)) continue;
    done.add(p.pid);
    try {
      process.kill(p.pid, signal);
    } catch {
      // gone meanwhile
    }
  }
}

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- The documents ----

export interface TutorialFile {
  /** Relative to the repository's root, e.g. docs/tutorials/prover-pool.md. */
  name: string;
  doc: TutorialDoc;
}

/** README.md and every docs/tutorials/*.md (but their README.md, which describes the annotations), parsed. */
/**
 * Documents run by a test of their own, which also takes every command block
 * from the Markdown but needs set-up this runner does not make (a private
 * RabbitMQ broker): the document, and the test that runs it.
 */
export const OWN_RUNNERS: Readonly<Record<string, string>> = {
  'docs/tutorials/rabbitmq-rpc.md': 'src/bridge/tutorial.services.test.ts',
};

export function tutorialFiles(repo: string): TutorialFile[] {
  const names = ['README.md', ...readdirSync(join(repo, 'docs/tutorials')).filter((f) => f.endsWith('.md') && f !== 'README.md').sort().map((f) => `docs/tutorials/${f}`)]
    .filter((name) => OWN_RUNNERS[name] === undefined);
  return names.map((name) => ({ name, doc: parseTutorial(readFileSync(join(repo, name), 'utf8'), name) }));
}

/** The user to run a document as besides root: nobody's ids, from /etc/passwd; null when not root or there is no nobody. */
export function unprivilegedUser(): { uid: number; gid: number; name: string } | null {
  if (process.getuid?.() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  return uid && gid ? { uid: Number(uid), gid: Number(gid), name: 'nobody' } : null;
}
