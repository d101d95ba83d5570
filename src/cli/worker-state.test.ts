// `gaffer worker` keeps its id across restarts: real `gaffer serve` and
// `gaffer worker` processes on 127.0.0.1, the worker configured by a TOML file
// whose state file (worker.state.json beside it) is the default.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { GafferClient } from '../client/client.ts';
import { connectedWorkers, gaffer, stop, until } from './testing.ts';

const LISTENING = /^gaffer: listening on (http:\/\/127\.0\.0\.1:\d+) \(database (.+)\)$/;

describe('gaffer worker state file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-worker-state-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a worker restarted with the same config keeps its id and its one record', { timeout: 90_000 }, async () => {
    const serve = gaffer('serve', ['serve', '--port', '0', '--db', join(dir, 'gaffer.db'), '--log-level', 'warn']);
    try {
      const url = (await serve.waitLine(LISTENING))[1]!;
      const client = new GafferClient({ url });
      const config = join(dir, 'worker.toml');
      writeFileSync(config, `urls = ["${url}"]\nname = "stateful"\ntmpDir = "${join(dir, 'tmp')}"\n\n[queues.q]\nslots = 1\nexec = "true"\n`);
      const run = async (): Promise<string> => {
        const w = gaffer('worker', ['worker', '--config', config, '--log-level', 'warn']);
        try {
          const [info] = await connectedWorkers(client, ['stateful']);
          // The coordinator shows the worker connected as it sends its welcome; the worker saves the id on reading it.
          await until('the id saved', async () => existsSync(join(dir, 'worker.state.json')) && readFileSync(join(dir, 'worker.state.json'), 'utf8').includes(info!.id));
          return info!.id;
        } finally {
          await stop(w);
        }
      };
      const first = await run();
      const saved = JSON.parse(readFileSync(join(dir, 'worker.state.json'), 'utf8')) as { workers: Record<string, string> };
      assert.deepEqual(saved, { workers: { stateful: first } });
      await until('the worker shown offline', async () => (await client.workers()).find((w) => w.name === 'stateful' && !w.connected));
      const second = await run();
      assert.equal(second, first, 'the same id after a restart');
      const records = (await client.workers()).filter((w) => w.name === 'stateful');
      assert.deepEqual(records.map((w) => w.id), [first], 'GET /v1/workers shows one record');
    } finally {
      await stop(serve);
    }
  });
});
