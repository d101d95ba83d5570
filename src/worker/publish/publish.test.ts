// The publishers against real stores: a real S3-protocol server (s3rver) on
// 127.0.0.1, with a 40 MB file that goes as a multipart upload, and a
// directory on the local file system. Each object read back must hash to what
// the manifest says.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { PublishManifest } from '../../types/model.ts';
import { dirPublisher } from './dir.ts';
import { publishDir, PublishError, sha256File } from './publisher.ts';
import { s3Publisher } from './s3.ts';
import { S3_TEST_CREDENTIALS, startTestS3, type TestS3 } from './testing.ts';

const MIB = 1024 * 1024;
const JOB = '01JTESTJOB0000000000000000';
const FAST = { retryBaseDelayMs: 5, retryMaxDelayMs: 20 };

/** Writes `bytes` random bytes in 1 MiB chunks; returns their SHA-256. */
async function bigFile(path: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let left = bytes; left > 0; left -= MIB) {
    const chunk = randomBytes(Math.min(MIB, left));
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return hash.digest('hex');
}

describe('publishers', () => {
  let root: string;
  let out: string;
  let bigSha: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'gaffer-pub-'));
    out = join(root, 'out');
    mkdirSync(join(out, 'proof', 'parts'), { recursive: true });
    bigSha = await bigFile(join(out, 'sealed.bin'), 40 * MIB);
    writeFileSync(join(out, 'proof', 'proof.json'), JSON.stringify({ ok: true }));
    writeFileSync(join(out, 'proof', 'parts', 'a b.txt'), 'spaces in names\n');
    writeFileSync(join(out, 'empty'), '');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  describe('s3', () => {
    let s3: TestS3;
    before(async () => {
      s3 = await startTestS3(['outputs']);
    });
    after(() => s3.close());

    const publisher = (partSizeBytes = 5 * MIB) =>
      s3Publisher({ name: 'store', bucket: 'outputs', prefix: 'gaffer', endpoint: s3.endpoint, forcePathStyle: true, credentials: S3_TEST_CREDENTIALS, partSizeBytes });

    it('uploads every file, the 40 MB one in parts, and the manifest matches the objects read back', async () => {
      const p = publisher();
      const manifest = await publishDir({ publisher: p, dir: out, jobId: JOB, signal: new AbortController().signal, bounds: FAST });
      await p.close?.();
      assert.deepEqual(manifest.objects.map((o) => o.path), ['empty', 'proof/parts/a b.txt', 'proof/proof.json', 'sealed.bin']);
      assert.equal(manifest.bytes, manifest.objects.reduce((n, o) => n + o.bytes, 0));
      assert.deepEqual(await s3.keys('outputs'), manifest.objects.map((o) => `gaffer/${JOB}/${o.path}`));
      for (const o of manifest.objects) {
        const back = await s3.read('outputs', `gaffer/${JOB}/${o.path}`);
        assert.equal(back.sha256, o.sha256, o.path);
        assert.equal(back.bytes, o.bytes, o.path);
        assert.equal(back.metadata.sha256, o.sha256, `${o.path}: the object carries its hash`);
        assert.equal(o.sha256, await sha256File(join(out, o.path)));
      }
      const big = manifest.objects.find((o) => o.path === 'sealed.bin')!;
      assert.equal(big.sha256, bigSha);
      assert.equal(big.bytes, 40 * MIB);
      assert.equal(big.url, `${s3.endpoint}/outputs/gaffer/${JOB}/sealed.bin`);
      assert.equal(manifest.objects[1]!.url, `${s3.endpoint}/outputs/gaffer/${JOB}/proof/parts/a%20b.txt`);
      // 40 MiB in 5 MiB parts: one multipart upload of 8 parts; the small files in one request each.
      const sealed = s3.requests.filter((r) => r.includes(`/gaffer/${JOB}/sealed.bin`));
      assert.equal(sealed.filter((r) => r.startsWith('POST') && r.includes('uploads')).length, 1, 'the multipart upload is created once');
      assert.equal(sealed.filter((r) => r.startsWith('PUT') && r.includes('partNumber=')).length, 8, 'in 8 parts');
      assert.ok(s3.requests.some((r) => r.startsWith('PUT') && r.includes(`/gaffer/${JOB}/proof/proof.json`) && !r.includes('partNumber')), 'a small file in one PUT');
    });

    it('fails with PUBLISH_FAILED after its tries when the store is down, and succeeds once it is back', async () => {
      await s3.stop();
      const p = publisher();
      let retries = 0;
      await assert.rejects(
        publishDir({ publisher: p, dir: out, jobId: 'down', signal: new AbortController().signal, bounds: { ...FAST, fileTriesMax: 3 }, onRetry: () => retries++ }),
        (err: unknown) => err instanceof PublishError && err.code === 'PUBLISH_FAILED' && /in 3 tries/.test(err.message),
      );
      assert.ok(retries >= 2, 'the file was tried again before the publish failed');
      await s3.start();
      const manifest = await publishDir({ publisher: p, dir: out, jobId: 'down', signal: new AbortController().signal, bounds: FAST });
      await p.close?.();
      assert.equal(manifest.objects.length, 4);
      assert.equal((await s3.read('outputs', 'gaffer/down/sealed.bin')).sha256, bigSha);
    });

    it('refuses a part size below S3\'s smallest', () => {
      assert.throws(() => publisher(MIB), /at least 5242880/);
    });
  });

  describe('dir', () => {
    it('copies every file under <path>/<prefix><jobId>/, and the manifest matches the copies', async () => {
      const target = join(root, 'published');
      const manifest: PublishManifest = await publishDir({
        publisher: dirPublisher({ name: 'shared', path: target, prefix: 'runs/' }),
        dir: out,
        jobId: JOB,
        signal: new AbortController().signal,
        bounds: { ...FAST, concurrencyMax: 2 },
      });
      assert.equal(manifest.kind, 'dir');
      for (const o of manifest.objects) {
        const copy = join(target, 'runs', JOB, o.path);
        assert.equal(o.url, new URL(`file://${copy}`).href.replace(/ /g, '%20'));
        assert.equal(fileURLToPath(o.url), copy);
        assert.equal(await sha256File(copy), o.sha256);
      }
      assert.equal(readFileSync(join(target, 'runs', JOB, 'proof', 'proof.json'), 'utf8'), '{"ok":true}');
    });

    it('refuses an output holding a symbolic link, and one that is gone', async () => {
      const dir = join(root, 'linked');
      mkdirSync(dir);
      symlinkSync('/etc/passwd', join(dir, 'passwd'));
      const publisher = dirPublisher({ name: 'shared', path: join(root, 'nowhere') });
      const signal = new AbortController().signal;
      await assert.rejects(publishDir({ publisher, dir, jobId: JOB, signal }), (e: unknown) => e instanceof PublishError && e.code === 'OUTPUT_INVALID');
      await assert.rejects(publishDir({ publisher, dir: join(root, 'gone'), jobId: JOB, signal }), (e: unknown) => e instanceof PublishError && e.code === 'OUTPUT_MISSING');
    });
  });
});
