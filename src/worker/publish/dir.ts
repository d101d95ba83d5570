// The directory publisher: copies each file to <path>/<prefix><jobId>/<file
// path> on a local or mounted file system. A file is written beside its
// place under a temporary name and renamed into it once complete, so a reader
// never sees half a file, and a publish tried again replaces what it finds.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { normalPrefix, PublishError, type OutputFile, type Publisher } from './publisher.ts';

export interface DirPublisherConfig {
  name: string;
  /** The directory outputs are copied under. */
  path: string;
  /** Put before each job's directory, e.g. "proofs/"; default none. */
  prefix?: string;
}

export function dirPublisher(config: DirPublisherConfig): Publisher {
  const root = resolve(config.path);
  return {
    name: config.name,
    kind: 'dir',
    prefix: normalPrefix(config.prefix),
    async put(file: OutputFile, signal: AbortSignal) {
      const target = resolve(root, file.key);
      const rel = relative(root, target);
      if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new PublishError('OUTPUT_INVALID', `${file.path} would be published outside ${root}`);
      await mkdir(dirname(target), { recursive: true });
      const partial = `${target}.${randomBytes(6).toString('hex')}.partial`;
      try {
        await pipeline(createReadStream(file.absPath), createWriteStream(partial, { flush: true }), { signal });
        await rename(partial, target);
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      }
      return { url: pathToFileURL(target).href };
    },
  };
}
