// Publishing one output directory (docs/publishing.md): every regular file
// under it goes to the publisher as <prefix><jobId>/<path>, at most
// publishConcurrencyMax files at once, each tried up to publishFileTriesMax
// times with a doubling, jittered backoff. The keys depend only on the job
// and the path, so a publish tried again overwrites what a failed one left.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PUBLISH_DEFAULTS } from '../../types/limits.ts';
import type { PublishedObject, PublishManifest } from '../../types/model.ts';
import { pause } from '../../types/clock.ts';

/** One file to publish: where it is, its path in the directory, the key it goes to, and what it holds. */
export interface OutputFile {
  absPath: string;
  /** Its path inside the output directory, / between segments. */
  path: string;
  /** <prefix><jobId>/<path> */
  key: string;
  bytes: number;
  sha256: string;
}

/** A place outputs are published to. `put` writes one file under its key and says where it went. */
export interface Publisher {
  readonly name: string;
  readonly kind: PublishManifest['kind'];
  /** Put before each job's directory: empty, or ending in /. */
  readonly prefix: string;
  put(file: OutputFile, signal: AbortSignal): Promise<{ url: string }>;
  close?(): Promise<void>;
}

/** The publish failed: the code and message the job's publish shows. */
export class PublishError extends Error {
  override name = 'PublishError';
  readonly code: string;

  constructor(code: 'PUBLISH_FAILED' | 'OUTPUT_MISSING' | 'OUTPUT_INVALID', message: string) {
    super(message);
    this.code = code;
  }
}

export interface PublishBounds {
  concurrencyMax: number;
  fileTriesMax: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  filesMax: number;
  pathMaxChars: number;
}

export const PUBLISH_BOUNDS: PublishBounds = {
  concurrencyMax: PUBLISH_DEFAULTS.publishConcurrencyMax,
  fileTriesMax: PUBLISH_DEFAULTS.publishFileTriesMax,
  retryBaseDelayMs: PUBLISH_DEFAULTS.publishRetryBaseDelayMs,
  retryMaxDelayMs: PUBLISH_DEFAULTS.publishRetryMaxDelayMs,
  filesMax: PUBLISH_DEFAULTS.publishFilesMax,
  pathMaxChars: PUBLISH_DEFAULTS.publishPathMaxChars,
};

/** The key prefix a publisher config names: empty, or ending in one /. */
export function normalPrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+/, '');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

/** Lists the regular files under `dir` (symbolic links and other kinds are refused), sorted by path. */
export async function listOutput(dir: string, bounds: Pick<PublishBounds, 'filesMax' | 'pathMaxChars'>): Promise<{ absPath: string; path: string; bytes: number }[]> {
  const top = await lstat(dir).catch(() => null);
  if (!top?.isDirectory()) throw new PublishError('OUTPUT_MISSING', `the output directory ${dir} is gone`);
  const out: { absPath: string; path: string; bytes: number }[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const ent of await readdir(abs, { withFileTypes: true })) {
      const a = join(abs, ent.name);
      const r = rel === '' ? ent.name : `${rel}/${ent.name}`;
      if (ent.isDirectory()) {
        await walk(a, r);
        continue;
      }
      if (!ent.isFile()) throw new PublishError('OUTPUT_INVALID', `${r} in the output directory is not a regular file (links are not published)`);
      if (r.length > bounds.pathMaxChars) throw new PublishError('OUTPUT_INVALID', `the path ${r.slice(0, 64)}... is longer than publishPathMaxChars (${bounds.pathMaxChars})`);
      if (out.length >= bounds.filesMax) throw new PublishError('OUTPUT_INVALID', `the output directory holds more than publishFilesMax (${bounds.filesMax}) files`);
      out.push({ absPath: a, path: r, bytes: (await lstat(a)).size });
    }
  };
  await walk(dir, '');
  return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

/** SHA-256 of a file's bytes, lowercase hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface PublishDirParams {
  publisher: Publisher;
  dir: string;
  jobId: string;
  signal: AbortSignal;
  bounds?: Partial<PublishBounds>;
  random?: () => number;
  /** Called before each retry of a file, for logs. */
  onRetry?(path: string, tryNumber: number, err: unknown): void;
}

/** Publishes every file of `dir`, or throws a PublishError naming the first that could not be published. */
export async function publishDir(p: PublishDirParams): Promise<PublishManifest> {
  const bounds = { ...PUBLISH_BOUNDS, ...p.bounds };
  const files = await listOutput(p.dir, bounds);
  // The first file that fails stops the others: the publish is reported failed, and tried again as a whole.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  p.signal.addEventListener('abort', onAbort, { once: true });
  const q = { ...p, signal: stop.signal };
  const objects: PublishedObject[] = new Array(files.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < files.length && !stop.signal.aborted) {
      const i = next++;
      const f = files[i]!;
      const file: OutputFile = { ...f, key: `${p.publisher.prefix}${p.jobId}/${f.path}`, sha256: await sha256File(f.absPath) };
      const { url } = await withRetries(() => p.publisher.put(file, stop.signal), f.path, bounds, q);
      objects[i] = { path: f.path, url, bytes: f.bytes, sha256: file.sha256 };
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(bounds.concurrencyMax, files.length) }, () => lane().catch((err: unknown) => (stop.abort(), Promise.reject(err)))));
  } finally {
    p.signal.removeEventListener('abort', onAbort);
  }
  if (p.signal.aborted) throw new PublishError('PUBLISH_FAILED', 'the publish was stopped (the worker is stopping)');
  return { publisher: p.publisher.name, kind: p.publisher.kind, objects, bytes: objects.reduce((n, o) => n + o.bytes, 0) };
}

async function withRetries<T>(run: () => Promise<T>, path: string, bounds: PublishBounds, p: PublishDirParams): Promise<T> {
  const random = p.random ?? Math.random;
  for (let tryNumber = 1; ; tryNumber++) {
    try {
      return await run();
    } catch (err) {
      if (err instanceof PublishError && err.code !== 'PUBLISH_FAILED') throw err;
      if (tryNumber >= bounds.fileTriesMax || p.signal.aborted) {
        const why = err instanceof Error ? err.message : String(err);
        throw new PublishError('PUBLISH_FAILED', `could not publish ${path} to ${p.publisher.name} in ${tryNumber} tries: ${why || (err as Error).name}`);
      }
      p.onRetry?.(path, tryNumber, err);
      const ceiling = Math.min(bounds.retryMaxDelayMs, bounds.retryBaseDelayMs * 2 ** (tryNumber - 1));
      await pause(ceiling / 2 + (random() * ceiling) / 2, p.signal);
    }
  }
}
