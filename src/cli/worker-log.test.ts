// gaffer serve's worker log, in process: a real SQLite store and coordinator
// behind serve(), an in-process worker, and the log read line by line.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { it } from 'node:test';
import { pino } from 'pino';
import { LocalWorker } from '../coordinator/local-worker.ts';
import { systemClock } from '../types/clock.ts';
import { serve } from './serve.ts';

interface Line {
  level: number;
  msg: string;
  workerId?: string;
  by?: string;
  reason?: string;
}

it('logs quarantines by an operator and by the store once each, and releases', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gaffer-worker-log-'));
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  const config = { host: '127.0.0.1', port: 0, db: join(dir, 'gaffer.db'), sqliteSync: 'normal' as const, tokens: [], queues: {} };
  // A beat longer than the test: the test reads the workers itself.
  const served = await serve(config, pino({ level: 'info' }, sink), { quarantineWatchIntervalMs: 3_600_000 });
  const workers = ['w-a', 'w-b'].map(
    (name) =>
      new LocalWorker({
        coordinator: served.coordinator,
        clock: systemClock,
        spec: { id: name, name, labels: {}, cores: 1, memoryMb: 512, gpuIds: [], keys: [] },
        handlers: { q: { slots: 1, handler: () => null } },
        heartbeatIntervalMs: 200,
      }),
  );
  try {
    for (const w of workers) await w.start();
    await served.workerLog.poll();
    const quarantines = (): Line[] => lines.filter((l) => l.msg === 'worker quarantined');

    await served.coordinator.setQuarantine('w-a', true, 'by hand');
    await served.workerLog.poll();
    assert.deepEqual(quarantines().map((l) => [l.workerId, l.by, l.level]), [['w-a', 'operator', 40]]);

    // The store quarantines on its own inside a settle; the coordinator hears nothing of it.
    await served.store.setWorkerQuarantine({ workerId: 'w-b', quarantined: true, reason: 'too many invalid results' });
    await served.workerLog.poll();
    await served.workerLog.poll();
    assert.deepEqual(quarantines().map((l) => [l.workerId, l.by, l.reason ?? null]), [
      ['w-a', 'operator', null],
      ['w-b', 'store', 'too many invalid results'],
    ]);

    await served.coordinator.setQuarantine('w-a', false);
    assert.ok(lines.some((l) => l.msg === 'worker released from quarantine' && l.workerId === 'w-a' && l.level === 30));
  } finally {
    for (const w of workers) w.freeze();
    await served.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
