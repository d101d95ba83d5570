// Test helpers (used by tests only): a real S3-protocol server (s3rver, an
// npm package) on 127.0.0.1 over a temp directory, that a test can stop (its
// connections cut, as a store going down would) and start again on the same
// port with the same objects; and a client reading objects back.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('@20minutes/s3rver') as S3rverClass;

/** Requests a TestS3 remembers. */
const REQUESTS_KEPT_MAX = 10_000;

/** s3rver's fixed credentials. */
export const S3_TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface TestS3 {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  port: number;
  /** Path-style client with the server's credentials. */
  client: S3Client;
  /** Stops listening and cuts every connection; the objects stay. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** The requests the server has had, "METHOD /path?query", the latest REQUESTS_KEPT_MAX. */
  requests: string[];
  /** Every key in the bucket (at most 1000), sorted. */
  keys(bucket: string): Promise<string[]>;
  /** An object's bytes' SHA-256, size, ETag and metadata. */
  read(bucket: string, key: string): Promise<{ sha256: string; bytes: number; etag: string; metadata: Record<string, string> }>;
  close(): Promise<void>;
}

export async function startTestS3(buckets: readonly string[]): Promise<TestS3> {
  const directory = mkdtempSync(join(tmpdir(), 'gaffer-s3-'));
  let port = 0;
  let server: S3rverInstance | null = null;
  const requests: string[] = [];
  const start = async (): Promise<void> => {
    const s = new S3rver({ address: '127.0.0.1', port, silent: true, directory, configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
    port = (await s.run()).port;
    s.httpServer?.on('request', (req: { method?: string; url?: string }) => {
      requests.push(`${req.method ?? '?'} ${req.url ?? '?'}`);
      if (requests.length > REQUESTS_KEPT_MAX) requests.splice(0, requests.length - REQUESTS_KEPT_MAX);
    });
    server = s;
  };
  const stop = async (): Promise<void> => {
    const s = server;
    server = null;
    if (!s) return;
    const closed = s.close();
    s.httpServer?.closeAllConnections();
    await closed;
  };
  await start();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: S3_TEST_CREDENTIALS, maxAttempts: 1 });
  return {
    endpoint,
    port,
    client,
    requests,
    stop,
    start,
    async keys(bucket) {
      // Read unsigned: s3rver checks the SDK's signature of a listing wrongly (its query string), not of objects.
      const res = await fetch(`${endpoint}/${encodeURIComponent(bucket)}`);
      if (!res.ok) throw new Error(`listing ${bucket}: HTTP ${res.status}`);
      const xml = await res.text();
      const unescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
      return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => unescape(m[1]!)).sort();
    },
    async read(bucket, key) {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of got.Body as Readable) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      return { sha256: hash.digest('hex'), bytes, etag: String(head.ETag ?? ''), metadata: head.Metadata ?? {} };
    },
    async close() {
      client.destroy();
      await stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
