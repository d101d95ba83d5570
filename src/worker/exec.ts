// The exec runner: each attempt runs a command as a child process, so a worker
// can be written in any language (`gaffer worker --exec CMD`).
//
// The contract with the child:
// - command: a string runs through the shell (`/bin/sh -c CMD`, so pipes and
//   quoting work); an array is argv, run directly with no shell.
// - stdin: the job's payload as one line of JSON, then end of file.
// - stdout: the result, one JSON value (empty stdout is the result null), at
//   most stdoutMaxBytes. Write logs to stderr, never to stdout.
// - fd 3: optional progress, one JSON value per line (GAFFER_PROGRESS_FD=3).
// - exit 0: success. Exit 65 (permanentExitCode): fail the job, no retry. Any
//   other exit, or death by a signal: fail the attempt (retried while the job
//   has attempts left), with the tail of stderr as the message.
// - environment: the worker's own, plus GAFFER_JOB_ID, GAFFER_ATTEMPT_ID,
//   GAFFER_QUEUE, GAFFER_ATTEMPT (1 for the first attempt), GAFFER_TMP_DIR
//   (a fresh directory made with mkdtemp, removed after the attempt),
//   GAFFER_OUT_DIR (kept), for a pipeline job GAFFER_PIPELINE_ID, GAFFER_PHASE,
//   GAFFER_PHASE_INDEX, GAFFER_LOCALITY and GAFFER_PARENTS_FILE, and
//   CUDA_VISIBLE_DEVICES: exactly the GPU ids of this attempt, comma-separated,
//   empty when it has none.
// - the child leads a process group of its own (POSIX). Cancel, lost lease or
//   shutdown send SIGTERM to the group, then SIGKILL after killGraceMs; when
//   the child exits, what is left of its group is killed, so nothing of an
//   attempt outlives it.
// - resource trace (Linux): the child's CPU time (with its descendants') and
//   resident memory are sampled from /proc every traceIntervalMs (trace.ts)
//   and returned with the result, for trace verification.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { isIssuedId } from '../types/ids.ts';
import { EXEC_DEFAULTS, LIMITS } from '../types/limits.ts';
import type { Assignment, Json, Trace } from '../types/model.ts';
import { sampleProcess, type TraceSampler, type TraceSamplerOptions } from './trace.ts';

export interface ExecOptions {
  /** A string runs through the shell; an array is argv, run without one. */
  command: string | readonly string[];
  cwd?: string;
  /** Added to (and overriding) the worker's environment. */
  env?: Record<string, string>;
  /** Per-attempt temp directories go under this: <tmpRoot>/<attemptId>-<random> (mkdtemp), removed after. */
  tmpRoot?: string;
  /** Per-attempt output directories go under this: <outRoot>/<jobId>/<attemptId>, kept. */
  outRoot?: string;
  killGraceMs?: number;
  stdoutMaxBytes?: number;
  stderrTailMaxBytes?: number;
  /** How the child is sampled for its resource trace (intervals, and test doubles). */
  trace?: TraceSamplerOptions;
}

/** A successful run: the result, and the child's resource trace (null where /proc could not be read). */
export interface ExecOutcome {
  result: Json;
  trace: Trace | null;
}

export interface ExecAttempt {
  assignment: Assignment;
  payload: Json;
  /** Aborting stops the child: SIGTERM, then SIGKILL after killGraceMs. */
  signal: AbortSignal;
  progress?(value: Json): void;
  /** Called once the child is running. */
  onSpawn?(pid: number): void;
}

/** A failed run: `retryable` false for the permanent exit code and for output that is not a result. */
export class ExecError extends Error {
  override name = 'ExecError';
  readonly retryable: boolean;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderrTail: string;

  constructor(message: string, f: { retryable: boolean; exitCode?: number | null; signal?: NodeJS.Signals | null; stderrTail?: string }) {
    super(message);
    this.retryable = f.retryable;
    this.exitCode = f.exitCode ?? null;
    this.signal = f.signal ?? null;
    this.stderrTail = f.stderrTail ?? '';
  }
}

export const EXEC_ROOTS = {
  tmpRoot: join(tmpdir(), 'gaffer', 'tmp'),
  outRoot: join(tmpdir(), 'gaffer', 'out'),
};

/**
 * The assignment names ids that are not the coordinator's (a hostile or broken
 * coordinator, or anyone on a plain ws:// path): they would become paths
 * outside the roots, so nothing is run and nothing is created. Reported as a
 * failed attempt with the code INVALID_ASSIGNMENT.
 */
export class InvalidAssignmentError extends Error {
  override name = 'InvalidAssignmentError';
  readonly code = 'INVALID_ASSIGNMENT';
  readonly retryable = true;
}

/** Refuses ids that are not of the issued shape: only those are turned into path segments. */
export function checkAssignmentIds(a: Pick<Assignment, 'jobId' | 'attemptId'>): void {
  for (const [field, value] of [['jobId', a.jobId], ['attemptId', a.attemptId]] as const) {
    if (!isIssuedId(value)) {
      const shown = JSON.stringify(String(value).slice(0, 64));
      throw new InvalidAssignmentError(`refused the assignment: its ${field} ${shown} is not an id the coordinator issues (26 characters of Crockford base 32)`);
    }
  }
}

/** `dir` resolved, when it lies strictly inside `root`; throws otherwise (a guard behind checkAssignmentIds). */
function inside(root: string, dir: string): string {
  const r = resolve(root);
  const d = resolve(dir);
  const rel = relative(r, d);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new InvalidAssignmentError(`refused the assignment: ${d} is not inside ${r}`);
  return d;
}

/** Where the attempt's output directory is (or was): <outRoot>/<jobId>/<attemptId>. Throws InvalidAssignmentError for ids not of the issued shape. */
export function execOutDir(options: Pick<ExecOptions, 'outRoot'>, a: Pick<Assignment, 'jobId' | 'attemptId'>): string {
  checkAssignmentIds(a);
  const outRoot = resolve(options.outRoot ?? EXEC_ROOTS.outRoot);
  return inside(outRoot, join(outRoot, a.jobId, a.attemptId));
}

/**
 * Makes the attempt's directories: a fresh temp directory (mkdtemp, so it is
 * this attempt's own and nothing else's) inside tmpRoot, and the output
 * directory <outRoot>/<jobId>/<attemptId>. Throws InvalidAssignmentError,
 * having created nothing, when an id is not of the issued shape.
 */
export async function execDirs(options: Pick<ExecOptions, 'tmpRoot' | 'outRoot'>, a: Pick<Assignment, 'jobId' | 'attemptId'>): Promise<{ tmpDir: string; outDir: string }> {
  checkAssignmentIds(a);
  const tmpRoot = resolve(options.tmpRoot ?? EXEC_ROOTS.tmpRoot);
  const outDir = execOutDir(options, a);
  inside(tmpRoot, join(tmpRoot, a.attemptId));
  await mkdir(tmpRoot, { recursive: true });
  const tmpDir = inside(tmpRoot, await mkdtemp(join(tmpRoot, `${a.attemptId}-`)));
  await mkdir(outDir, { recursive: true });
  return { tmpDir, outDir };
}

/** Where, in the attempt's temp directory, a pipeline job's parents' results are written (GAFFER_PARENTS_FILE). */
export const PARENTS_FILE = 'gaffer-parents.json';

/** The environment a child sees, beyond the worker's own. */
export function execEnv(a: Assignment, dirs: { tmpDir: string; outDir: string }): Record<string, string> {
  const pipeline: Record<string, string> = a.pipeline
    ? {
        GAFFER_PIPELINE_ID: a.pipeline.id,
        GAFFER_PHASE: a.pipeline.phase,
        GAFFER_PHASE_INDEX: String(a.pipeline.index),
        GAFFER_LOCALITY: a.pipeline.locality,
        GAFFER_PARENTS_FILE: join(dirs.tmpDir, PARENTS_FILE),
      }
    : {};
  return {
    ...pipeline,
    GAFFER_JOB_ID: a.jobId,
    GAFFER_ATTEMPT_ID: a.attemptId,
    GAFFER_QUEUE: a.queue,
    GAFFER_ATTEMPT: String(a.attempt),
    GAFFER_TMP_DIR: dirs.tmpDir,
    GAFFER_OUT_DIR: dirs.outDir,
    GAFFER_PROGRESS_FD: '3',
    CUDA_VISIBLE_DEVICES: a.gpuIds.join(','),
  };
}

/**
 * Runs one attempt as a child process; resolves with its result and resource
 * trace, or rejects with an ExecError (or the abort reason).
 */
export async function runExec(options: ExecOptions, attempt: ExecAttempt): Promise<ExecOutcome> {
  attempt.signal.throwIfAborted();
  const dirs = await execDirs(options, attempt.assignment);
  try {
    // A job of a pipeline: its parents' results, as its assignment carried them, in a file of the attempt's temp directory.
    if (attempt.assignment.pipeline) await writeFile(join(dirs.tmpDir, PARENTS_FILE), JSON.stringify(attempt.assignment.parents ?? []));
    return await runChild(options, attempt, dirs);
  } finally {
    // Only the directory mkdtemp made for this attempt, never a path built from the assignment.
    await rm(dirs.tmpDir, { recursive: true, force: true });
  }
}

function runChild(options: ExecOptions, attempt: ExecAttempt, dirs: { tmpDir: string; outDir: string }): Promise<ExecOutcome> {
  const stdoutMax = options.stdoutMaxBytes ?? EXEC_DEFAULTS.stdoutMaxBytes;
  const stderrMax = options.stderrTailMaxBytes ?? EXEC_DEFAULTS.stderrTailMaxBytes;
  const graceMs = options.killGraceMs ?? EXEC_DEFAULTS.killGraceMs;
  const env = { ...process.env, ...options.env, ...execEnv(attempt.assignment, dirs) };
  const stdio: ('pipe')[] = ['pipe', 'pipe', 'pipe', 'pipe'];
  const posix = process.platform !== 'win32';
  if (typeof options.command !== 'string' && options.command.length === 0) {
    return Promise.reject(new ExecError('the exec command is empty', { retryable: true }));
  }
  const child =
    typeof options.command === 'string'
      ? spawn(options.command, { shell: true, cwd: options.cwd, env, stdio, detached: posix })
      : spawn(options.command[0] ?? '', options.command.slice(1), { cwd: options.cwd, env, stdio, detached: posix });

  return new Promise<ExecOutcome>((resolve, reject) => {
    const stdout = collect(child.stdout!, stdoutMax);
    const stderr = tail(child.stderr!, stderrMax);
    if (attempt.progress) lines(child.stdio[3] as Readable, LIMITS.progressMaxBytes, attempt.progress);
    else (child.stdio[3] as Readable).resume();
    child.stdin!.on('error', () => undefined); // a child that never reads its stdin is fine
    child.stdin!.end(JSON.stringify(attempt.payload) + '\n');

    let killTimer: NodeJS.Timeout | null = null;
    const onAbort = (): void => {
      signalGroup(child, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
      killTimer.unref();
    };
    attempt.signal.addEventListener('abort', onAbort, { once: true });
    let spawnError: Error | null = null;
    let sampler: TraceSampler | null = null;
    child.once('spawn', () => {
      sampler = sampleProcess(child.pid!, options.trace);
      attempt.onSpawn?.(child.pid!);
    });
    child.once('error', (err) => {
      spawnError = err;
    });
    // A child's stdout closes as it exits: one more sample then catches it done, before it is reaped.
    child.stdout!.once('end', () => sampler?.sampleExiting());
    // Whatever the child left running in its group goes with it; when stopping, after the grace period.
    child.once('exit', () => {
      void sampler?.stop();
      if (!attempt.signal.aborted) signalGroup(child, 'SIGKILL');
    });
    child.once('close', (code, sig) => {
      attempt.signal.removeEventListener('abort', onAbort);
      const trace: Promise<Trace | null> = sampler ? sampler.stop() : Promise.resolve(null);
      // An aborted child's kill timer stays armed: it ends what is left of the group when the grace runs out.
      if (attempt.signal.aborted) return reject(attempt.signal.reason);
      const stderrTail = stderr.text();
      if (spawnError) return reject(new ExecError(`could not start the command: ${spawnError.message}`, { retryable: true }));
      if (code === 0) {
        void trace.then((t) => settleOutput(stdout, stdoutMax, stderrTail, (result) => resolve({ result, trace: t }), reject));
        return;
      }
      const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
      const permanent = code === EXEC_DEFAULTS.permanentExitCode;
      const message = `the command ${how}${stderrTail ? `; stderr (last ${stderrMax} bytes at most):\n${stderrTail}` : ''}`;
      reject(new ExecError(message, { retryable: !permanent, exitCode: code, signal: sig, stderrTail }));
    });
  });
}

function settleOutput(
  stdout: { bytes(): Buffer; overflow(): boolean },
  max: number,
  stderrTail: string,
  resolve: (v: Json) => void,
  reject: (e: unknown) => void,
): void {
  if (stdout.overflow()) {
    return reject(new ExecError(`the command wrote more than ${max} bytes to stdout; the result must be smaller`, { retryable: false, exitCode: 0, stderrTail }));
  }
  const text = stdout.bytes().toString('utf8').trim();
  if (text === '') return resolve(null);
  try {
    resolve(JSON.parse(text) as Json);
  } catch {
    const start = text.length > 200 ? `${text.slice(0, 200)}...` : text;
    reject(new ExecError(`stdout is not one JSON value (write logs to stderr): ${start}`, { retryable: false, exitCode: 0, stderrTail }));
  }
}

/** Signals the child's whole process group (POSIX), or the child alone. ESRCH (already gone) is fine. */
function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    if (process.platform !== 'win32') process.kill(-child.pid, sig);
    else child.kill(sig);
  } catch {
    // the group is gone already
  }
}

/** Reads a stream up to `max` bytes; past that it only notes the overflow and drains. */
function collect(stream: Readable, max: number): { bytes(): Buffer; overflow(): boolean } {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  stream.on('data', (c: Buffer) => {
    if (over) return;
    if (size + c.length > max) {
      over = true;
      chunks.length = 0;
      return;
    }
    chunks.push(c);
    size += c.length;
  });
  return { bytes: () => Buffer.concat(chunks), overflow: () => over };
}

/** Keeps the last `max` bytes of a stream. */
function tail(stream: Readable, max: number): { text(): string } {
  let buf = Buffer.alloc(0);
  stream.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    if (buf.length > max) buf = buf.subarray(buf.length - max);
  });
  return { text: () => buf.toString('utf8').trimEnd() };
}

/** Calls `onValue` for each line of JSON; lines longer than `max` or not JSON are skipped. */
function lines(stream: Readable, max: number, onValue: (v: Json) => void): void {
  let pending = '';
  let skipping = false;
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (pending + chunk).split('\n');
    pending = parts.pop() ?? '';
    for (const line of parts) {
      if (skipping) {
        skipping = false;
        continue;
      }
      const t = line.trim();
      if (t === '') continue;
      try {
        onValue(JSON.parse(t) as Json);
      } catch {
        // not JSON: ignored
      }
    }
    if (pending.length > max) {
      pending = '';
      skipping = true;
    }
  });
  stream.on('error', () => undefined);
}
