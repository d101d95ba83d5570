// The S3 publisher: any S3-compatible store, through the AWS SDK's S3
// client. A file up to publishPartSizeBytes goes in one PutObject; a larger
// one as a multipart upload (lib-storage's Upload) in parts of that size, at
// most publishPartsInFlightMax in flight, aborted if a part fails. Each object
// carries its SHA-256 as metadata (x-amz-meta-sha256). Credentials are the
// worker's own: given in its config, or the SDK's chain (AWS_ACCESS_KEY_ID
// and AWS_SECRET_ACCESS_KEY, a profile, an instance role); no client ever
// sends any. The SDK's own retries are off: publishFileTriesMax bounds them.
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PUBLISH_DEFAULTS } from '../../types/limits.ts';
import { normalPrefix, type OutputFile, type Publisher } from './publisher.ts';

/** S3's smallest part (all but the last of a multipart upload). */
const S3_PART_MIN_BYTES = 5 * 1024 * 1024;

export interface S3PublisherConfig {
  name: string;
  bucket: string;
  /** Put before each job's directory, e.g. "proofs/"; default none. */
  prefix?: string;
  /** The store's URL, e.g. http://127.0.0.1:9000; AWS S3 when left out. */
  endpoint?: string;
  /** Default us-east-1. */
  region?: string;
  /** Bucket in the path (http://host/bucket/key) rather than in the host name; most self-hosted stores need it. */
  forcePathStyle?: boolean;
  /** The worker's credentials; left out: the SDK's chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  partSizeBytes?: number;
  partsInFlightMax?: number;
}

export function s3Publisher(config: S3PublisherConfig): Publisher {
  const partSize = config.partSizeBytes ?? PUBLISH_DEFAULTS.publishPartSizeBytes;
  if (!Number.isInteger(partSize) || partSize < S3_PART_MIN_BYTES) throw new TypeError(`publisher ${config.name}: partSizeBytes is at least ${S3_PART_MIN_BYTES} (S3's smallest part)`);
  const region = config.region ?? 'us-east-1';
  const client = new S3Client({
    region,
    ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.forcePathStyle ?? false,
    ...(config.credentials ? { credentials: config.credentials } : {}),
    maxAttempts: 1,
    // Checksums only where the API requires them: not every S3-compatible store takes the SDK's trailing ones.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const urlOf = objectUrl(config, region);
  return {
    name: config.name,
    kind: 's3',
    prefix: normalPrefix(config.prefix),
    async put(file: OutputFile, signal: AbortSignal) {
      const params = { Bucket: config.bucket, Key: file.key, Metadata: { sha256: file.sha256 } };
      if (file.bytes <= partSize) {
        // Small enough for one request: read whole (at most one part's size).
        await client.send(new PutObjectCommand({ ...params, Body: await readFile(file.absPath), ContentLength: file.bytes }), { abortSignal: signal });
      } else {
        const upload = new Upload({
          client,
          params: { ...params, Body: createReadStream(file.absPath) },
          partSize,
          queueSize: config.partsInFlightMax ?? PUBLISH_DEFAULTS.publishPartsInFlightMax,
          leavePartsOnError: false,
        });
        const stop = (): void => void upload.abort().catch(() => undefined);
        signal.addEventListener('abort', stop, { once: true });
        try {
          await upload.done();
        } finally {
          signal.removeEventListener('abort', stop);
        }
      }
      return { url: urlOf(file.key) };
    },
    async close() {
      client.destroy();
    },
  };
}

/** An object's URL: path style under the endpoint, virtual-host style, or AWS S3's own. */
function objectUrl(config: S3PublisherConfig, region: string): (key: string) => string {
  const path = (key: string): string => key.split('/').map(encodeURIComponent).join('/');
  if (config.endpoint === undefined) return (key) => `https://${config.bucket}.s3.${region}.amazonaws.com/${path(key)}`;
  const base = new URL(config.endpoint);
  const root = base.href.replace(/\/+$/, '');
  if (config.forcePathStyle) return (key) => `${root}/${encodeURIComponent(config.bucket)}/${path(key)}`;
  return (key) => `${base.protocol}//${config.bucket}.${base.host}${base.pathname.replace(/\/+$/, '')}/${path(key)}`;
}
