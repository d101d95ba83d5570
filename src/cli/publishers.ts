// `gaffer worker`'s publishers (docs/publishing.md): named in the TOML config
// under [publishers.NAME] and chosen per queue (`publish = "NAME"`), or given
// by flags for every queue: --publish-dir DIR, or --publish-s3 s3://BUCKET/PREFIX
// with --s3-endpoint and --s3-path-style. S3 credentials are the worker's:
// accessKeyId/secretAccessKey in the config, else the AWS SDK's chain
// (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, an instance role).
import { GafferError } from '../types/errors.ts';
import { dirPublisher, s3Publisher, type PublishBounds, type Publisher } from '../worker/index.ts';
import { int } from './config.ts';

export type PublisherPlan =
  | { kind: 'dir'; path: string; prefix?: string }
  | {
      kind: 's3';
      bucket: string;
      prefix?: string;
      endpoint?: string;
      region?: string;
      forcePathStyle?: boolean;
      accessKeyId?: string;
      secretAccessKey?: string;
      partSizeBytes?: number;
    };

export interface PublishFlags {
  publish?: string;
  publishDir?: string;
  publishS3?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
}

const MIB = 1024 * 1024;

/** The publishers a config file names, and the one the flags give to every queue (null: none). */
export function publisherPlans(flags: PublishFlags, file: Record<string, unknown>): { plans: Record<string, PublisherPlan>; forAll: string | null } {
  const plans: Record<string, PublisherPlan> = {};
  const table = (file.publishers ?? {}) as Record<string, Record<string, unknown>>;
  if (typeof table !== 'object' || Array.isArray(table)) throw new GafferError('INVALID_INPUT', 'publishers must be a table of [publishers.NAME]');
  for (const [name, raw] of Object.entries(table)) plans[name] = publisherFromToml(name, raw);
  let forAll: string | null = null;
  if (flags.publishDir !== undefined) {
    plans.dir = { kind: 'dir', path: flags.publishDir };
    forAll = 'dir';
  } else if (flags.publishS3 !== undefined) {
    const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(flags.publishS3);
    if (!m) throw new GafferError('INVALID_INPUT', `--publish-s3 takes s3://BUCKET[/PREFIX], got "${flags.publishS3}"`);
    plans.s3 = {
      kind: 's3',
      bucket: m[1]!,
      ...(m[2] ? { prefix: m[2] } : {}),
      ...(flags.s3Endpoint !== undefined ? { endpoint: flags.s3Endpoint } : {}),
      ...(flags.s3Region !== undefined ? { region: flags.s3Region } : {}),
      ...(flags.s3PathStyle ? { forcePathStyle: true } : {}),
    };
    forAll = 's3';
  } else if (flags.publish !== undefined) {
    forAll = flags.publish;
  }
  if (forAll !== null && !(forAll in plans)) throw new GafferError('INVALID_INPUT', `--publish names ${forAll}, which no [publishers.${forAll}] defines`);
  return { plans, forAll };
}

function publisherFromToml(name: string, raw: Record<string, unknown>): PublisherPlan {
  const at = (k: string): string => `publishers.${name}.${k}`;
  const str = (k: string): string | undefined => (raw[k] === undefined ? undefined : String(raw[k]));
  const prefix = str('prefix');
  if (raw.kind === 'dir') {
    if (raw.path === undefined) throw new GafferError('INVALID_INPUT', `${at('path')} is required: the directory outputs are copied under`);
    return { kind: 'dir', path: String(raw.path), ...(prefix !== undefined ? { prefix } : {}) };
  }
  if (raw.kind !== 's3') throw new GafferError('INVALID_INPUT', `${at('kind')} must be "dir" or "s3"`);
  if (raw.bucket === undefined) throw new GafferError('INVALID_INPUT', `${at('bucket')} is required`);
  const partSizeMb = int(raw.partSizeMb, at('partSizeMb'));
  const plan: PublisherPlan = { kind: 's3', bucket: String(raw.bucket), ...(prefix !== undefined ? { prefix } : {}) };
  for (const k of ['endpoint', 'region', 'accessKeyId', 'secretAccessKey'] as const) {
    const v = str(k);
    if (v !== undefined) plan[k] = v;
  }
  if (raw.forcePathStyle !== undefined) plan.forcePathStyle = raw.forcePathStyle === true;
  if (partSizeMb !== undefined) plan.partSizeBytes = partSizeMb * MIB;
  if ((plan.accessKeyId === undefined) !== (plan.secretAccessKey === undefined)) {
    throw new GafferError('INVALID_INPUT', `${at('accessKeyId')} and ${at('secretAccessKey')} go together`);
  }
  return plan;
}

/** Publishing bounds from the config's [publishing] table. */
export function publishBoundsOf(file: Record<string, unknown>): { bounds: Partial<PublishBounds>; outputKeepMaxMs?: number } {
  const t = (file.publishing ?? {}) as Record<string, unknown>;
  const bounds: Partial<PublishBounds> = {};
  for (const k of ['concurrencyMax', 'fileTriesMax', 'retryBaseDelayMs', 'retryMaxDelayMs'] as const) {
    const v = int(t[k], `publishing.${k}`);
    if (v !== undefined) {
      if (v < (k === 'retryBaseDelayMs' || k === 'retryMaxDelayMs' ? 0 : 1)) throw new GafferError('INVALID_INPUT', `publishing.${k} is too small`);
      bounds[k] = v;
    }
  }
  const hours = int(t.outputKeepHours, 'publishing.outputKeepHours');
  return { bounds, ...(hours !== undefined ? { outputKeepMaxMs: hours * 3600 * 1000 } : {}) };
}

/** One Publisher per plan, made once and shared by the queues that name it. */
export function makePublishers(plans: Record<string, PublisherPlan>): Map<string, Publisher> {
  const out = new Map<string, Publisher>();
  for (const [name, p] of Object.entries(plans)) {
    if (p.kind === 'dir') {
      out.set(name, dirPublisher({ name, path: p.path, ...(p.prefix !== undefined ? { prefix: p.prefix } : {}) }));
      continue;
    }
    const { kind: _kind, accessKeyId, secretAccessKey, ...rest } = p;
    out.set(name, s3Publisher({ name, ...rest, ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}) }));
  }
  return out;
}
