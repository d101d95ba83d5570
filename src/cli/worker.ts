// `gaffer worker`: connect to one or more coordinators and run attempts, each
// as a child process (--exec) or a handler module on worker threads (--module).
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { GafferError } from '../types/errors.ts';
import type { Labels } from '../types/model.ts';
import { Worker, type Publisher, type QueueConfig } from '../worker/index.ts';
import { int, readToml } from './config.ts';
import { DEFAULT_URL } from './common.ts';
import { makePublishers, publishBoundsOf, publisherPlans, type PublisherPlan, type PublishFlags } from './publishers.ts';
import { createLogger, parseLogFormat } from './log-format.ts';

interface WorkerFlags extends PublishFlags {
  url?: string[];
  token?: string;
  name?: string;
  queue?: string[];
  exec?: string;
  module?: string;
  gpus?: string;
  cores?: string;
  memoryMb?: string;
  label?: string[];
  key?: string[];
  tmpDir?: string;
  outDir?: string;
  stateFile?: string;
  config?: string;
  logLevel: string;
  logFormat?: string;
}

/** One queue as configured: how many at once, how it runs, and optionally its own resources. */
export interface QueuePlan {
  slots: number;
  exec?: string;
  module?: string;
  gpus?: number[];
  cores?: number;
  tmpDir?: string;
  outDir?: string;
  /** The publisher (a name in WorkerPlan.publishers) its outputs go to once accepted. */
  publish?: string;
}

export interface WorkerPlan {
  urls: string[];
  token?: string;
  name: string;
  labels: Labels;
  keys: string[];
  gpus: number[];
  cores: number;
  memoryMb: number;
  tmpDir?: string;
  outDir?: string;
  /** Where the worker ids are kept across restarts (stateFilePath); none: a restart is a new worker record. */
  stateFile?: string;
  queues: Record<string, QueuePlan>;
  /** [publishers.NAME] of the config, and those the flags give (docs/publishing.md). */
  publishers: Record<string, PublisherPlan>;
  publishing: ReturnType<typeof publishBoundsOf>;
}

const list = (v: unknown, where: string): unknown[] => {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new GafferError('INVALID_INPUT', `${where} must be an array`);
  return v;
};

function gpuList(text: string, where: string): number[] {
  if (text.trim() === '') return [];
  return text.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 0) throw new GafferError('INVALID_INPUT', `${where}: "${s}" is not a GPU id`);
    return n;
  });
}

function parseQueueFlag(text: string): [string, number] {
  const m = /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new GafferError('INVALID_INPUT', `--queue takes NAME or NAME:SLOTS, got "${text}"`);
  return [m[1]!, m[2] === undefined ? 1 : Number(m[2])];
}

/**
 * The state file: --state-file, else `stateFile` in the config (relative to
 * the config's directory), else beside the config: `worker.toml` keeps its ids
 * in `worker.state.json`. Without a config file, only --state-file keeps them.
 */
function stateFilePath(flags: WorkerFlags, file: Record<string, unknown>): string | undefined {
  if (flags.stateFile !== undefined) return resolve(flags.stateFile);
  if (flags.config === undefined) return undefined;
  const dir = dirname(resolve(flags.config));
  if (file.stateFile !== undefined) return resolve(dir, String(file.stateFile));
  return join(dir, `${basename(flags.config).replace(/\.toml$/i, '')}.state.json`);
}

/** The worker's plan: the config file, then GAFFER_* variables, then flags. */
export function workerPlan(flags: WorkerFlags, env: NodeJS.ProcessEnv): WorkerPlan {
  const file = flags.config ? readToml(flags.config) : {};
  const fileUrls = list(file.urls ?? (file.url === undefined ? undefined : [file.url]), 'urls').map(String);
  const envUrls = env.GAFFER_URL ? env.GAFFER_URL.split(',') : [];
  const urls = flags.url?.length ? flags.url : envUrls.length ? envUrls : fileUrls.length ? fileUrls : [DEFAULT_URL];
  const labels: Labels = { ...((file.labels as Labels | undefined) ?? {}) };
  for (const kv of flags.label ?? []) {
    const [k, v] = kv.split(/=(.*)/s);
    if (!k || v === undefined) throw new GafferError('INVALID_INPUT', `--label takes key=value, got "${kv}"`);
    labels[k] = v;
  }
  const queues: Record<string, QueuePlan> = {};
  for (const [name, raw] of Object.entries((file.queues as Record<string, Record<string, unknown>> | undefined) ?? {})) {
    queues[name] = queueFromToml(name, raw);
  }
  for (const q of flags.queue ?? []) {
    const [name, slots] = parseQueueFlag(q);
    queues[name] = { ...queues[name], slots };
  }
  for (const q of Object.values(queues)) {
    if (flags.exec !== undefined) (q.exec = flags.exec), delete q.module;
    if (flags.module !== undefined) (q.module = flags.module), delete q.exec;
    if (q.exec === undefined && q.module === undefined) {
      throw new GafferError('INVALID_INPUT', 'each queue needs a way to run its jobs: --exec CMD, --module FILE, or exec/module in the config');
    }
  }
  if (Object.keys(queues).length === 0) throw new GafferError('INVALID_INPUT', 'name at least one queue: --queue NAME[:SLOTS]');
  const { plans: publishers, forAll } = publisherPlans(flags, file);
  for (const [name, q] of Object.entries(queues)) {
    if (forAll !== null) q.publish = forAll;
    if (q.publish !== undefined && !(q.publish in publishers)) {
      throw new GafferError('INVALID_INPUT', `queues.${name}.publish names ${q.publish}, which no [publishers.${q.publish}] defines`);
    }
    if (q.publish !== undefined && q.module !== undefined) throw new GafferError('INVALID_INPUT', `queue ${name}: a --module queue has no output directory to publish`);
  }
  const token = flags.token ?? env.GAFFER_TOKEN ?? (file.token as string | undefined);
  const tmpDir = flags.tmpDir ?? (file.tmpDir as string | undefined);
  const outDir = flags.outDir ?? (file.outDir as string | undefined);
  const stateFile = stateFilePath(flags, file);
  return {
    urls,
    ...(token ? { token } : {}),
    name: flags.name ?? (file.name as string | undefined) ?? `worker-${process.pid}`,
    labels,
    keys: [...list(file.keys, 'keys').map(String), ...(flags.key ?? [])],
    gpus: flags.gpus !== undefined ? gpuList(flags.gpus, '--gpus') : list(file.gpus, 'gpus').map(Number),
    cores: int(flags.cores, '--cores') ?? int(file.cores, 'cores') ?? 0,
    memoryMb: int(flags.memoryMb, '--memory-mb') ?? int(file.memoryMb, 'memoryMb') ?? 0,
    ...(tmpDir ? { tmpDir } : {}),
    ...(outDir ? { outDir } : {}),
    ...(stateFile ? { stateFile } : {}),
    queues,
    publishers,
    publishing: publishBoundsOf(file),
  };
}

function queueFromToml(name: string, raw: Record<string, unknown>): QueuePlan {
  const at = (k: string): string => `queues.${name}.${k}`;
  const plan: QueuePlan = { slots: int(raw.slots, at('slots')) ?? 1 };
  if (raw.exec !== undefined) plan.exec = String(raw.exec);
  if (raw.module !== undefined) plan.module = String(raw.module);
  if (raw.gpus !== undefined) plan.gpus = list(raw.gpus, at('gpus')).map(Number);
  const cores = int(raw.cores, at('cores'));
  if (cores !== undefined) plan.cores = cores;
  if (raw.tmpDir !== undefined) plan.tmpDir = String(raw.tmpDir);
  if (raw.outDir !== undefined) plan.outDir = String(raw.outDir);
  if (raw.publish !== undefined) plan.publish = String(raw.publish);
  return plan;
}

function queueConfig(q: QueuePlan, plan: WorkerPlan, publishers: Map<string, Publisher>): QueueConfig {
  if (q.module !== undefined) return { slots: q.slots, module: resolve(q.module) };
  const tmpRoot = q.tmpDir ?? plan.tmpDir;
  const outRoot = q.outDir ?? plan.outDir;
  const publish = q.publish === undefined ? undefined : publishers.get(q.publish);
  return {
    slots: q.slots,
    exec: { command: q.exec!, ...(tmpRoot ? { tmpRoot } : {}), ...(outRoot ? { outRoot } : {}) },
    ...(publish ? { publish } : {}),
  };
}

/**
 * A queue with its own GPUs or cores runs as a logical worker of its own, so
 * the coordinator hands it only those; the other queues share the rest.
 */
export function splitWorkers(plan: WorkerPlan): { name: string; gpus: number[]; cores: number; queues: Record<string, QueuePlan> }[] {
  const shared: Record<string, QueuePlan> = {};
  const own: { name: string; gpus: number[]; cores: number; queues: Record<string, QueuePlan> }[] = [];
  for (const [name, q] of Object.entries(plan.queues)) {
    if (q.gpus !== undefined || q.cores !== undefined) {
      own.push({ name: `${plan.name}/${name}`, gpus: q.gpus ?? [], cores: q.cores ?? plan.cores, queues: { [name]: q } });
    } else {
      shared[name] = q;
    }
  }
  const out = Object.keys(shared).length ? [{ name: plan.name, gpus: plan.gpus, cores: plan.cores, queues: shared }] : [];
  return [...out, ...own];
}

export function registerWorker(program: Command): void {
  const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
  program
    .command('worker')
    .description('run a worker: pull jobs from the coordinator and run each as a child process or a handler module')
    .option('--url <url>', 'coordinator URL; repeat for fallbacks (env GAFFER_URL, comma-separated)', collect)
    .option('--token <token>', 'bearer token with the worker scope (env GAFFER_TOKEN)')
    .option('--name <name>', 'a name shown in listings')
    .option('--queue <name[:slots]>', 'a queue to serve, with how many attempts at once (repeatable)', collect)
    .option('--exec <cmd>', 'run each attempt as this shell command: payload JSON on stdin, result JSON on stdout')
    .option('--module <file>', 'run each attempt with the default export of this module, on worker threads')
    .option('--gpus <ids>', 'GPU ids this worker hands out, e.g. 0,1 (each attempt sees its own in CUDA_VISIBLE_DEVICES)')
    .option('--cores <n>', 'cores this worker offers')
    .option('--memory-mb <n>', 'memory this worker offers, in MiB')
    .option('--label <k=v>', 'a label the worker carries (repeatable)', collect)
    .option('--key <key>', 'an affinity key whose data this worker holds (repeatable)', collect)
    .option('--tmp-dir <dir>', 'root of per-attempt temp directories (each made fresh, removed after its attempt)')
    .option('--out-dir <dir>', 'root of per-attempt output directories (kept)')
    .option('--state-file <file>', 'keep the worker ids the coordinator gives in this file, so a restart keeps its record (default with --config: beside it, NAME.state.json)')
    .option('--publish <name>', 'publish every queue\'s accepted outputs with this [publishers.NAME] of the config')
    .option('--publish-dir <dir>', 'publish every queue\'s accepted outputs (GAFFER_OUT_DIR) by copying them under this directory')
    .option('--publish-s3 <s3://bucket/prefix>', 'publish every queue\'s accepted outputs to this S3-compatible bucket (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)')
    .option('--s3-endpoint <url>', 'the S3-compatible store\'s URL for --publish-s3 (default: AWS S3)')
    .option('--s3-region <region>', 'the region for --publish-s3 (default us-east-1)')
    .option('--s3-path-style', 'address the bucket in the path, not the host name (most self-hosted stores)')
    .option('--config <file>', 'TOML worker config: urls, token, name, labels, keys, gpus, cores, stateFile, [queues.NAME]')
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
    .option('--log-format <format>', 'pretty (a line a person reads), json (pino lines for machines), or auto: pretty on a terminal, json otherwise', 'auto')
    .action(async (flags: WorkerFlags) => {
      const plan = workerPlan(flags, process.env);
      const logger = createLogger(flags.logLevel, parseLogFormat(flags.logFormat));
      const publishers = makePublishers(plan.publishers);
      const workers = splitWorkers(plan).map(
        (w) =>
          new Worker({
            urls: plan.urls,
            ...(plan.token ? { token: plan.token } : {}),
            name: w.name,
            labels: plan.labels,
            keys: plan.keys,
            gpuIds: w.gpus,
            cores: w.cores,
            memoryMb: plan.memoryMb,
            ...(plan.stateFile ? { stateFile: plan.stateFile } : {}),
            queues: Object.fromEntries(Object.entries(w.queues).map(([q, qp]) => [q, queueConfig(qp, plan, publishers)])),
            publishBounds: plan.publishing.bounds,
            ...(plan.publishing.outputKeepMaxMs !== undefined ? { outputKeepMaxMs: plan.publishing.outputKeepMaxMs } : {}),
            logger,
            handleSignals: false,
          }),
      );
      let stopping = false;
      const onSignal = (sig: string): void => {
        if (stopping) {
          logger.warn({ sig }, 'second signal: giving up running attempts');
          void Promise.all(workers.map((w) => w.stop(`${sig} received twice`))).then(() => process.exit(1));
          return;
        }
        stopping = true;
        logger.info({ sig }, 'draining: finishing running attempts, taking no new ones');
        void Promise.all(workers.map((w) => w.drain())).then(() => process.exit(0));
      };
      process.on('SIGTERM', () => onSignal('SIGTERM'));
      process.on('SIGINT', () => onSignal('SIGINT'));
      // Each worker logs its own connections, losses and refusals (the SDK's logger).
      for (const w of workers) await w.start();
    });
}
