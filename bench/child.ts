// The bench's worker process: consumes one system's jobs with a no-op handler,
// driven by the bench process over IPC.
//
//   drain:   opens the consumer (connections), says `ready`; on `go` starts it
//            and times, on this process's clock, from that start until the
//            system has recorded `n` completions.
//   e2e:     opens and starts the consumer, lets it settle, says `ready`; says
//            `done` once the system has recorded `n` completions (the bench
//            process times from its first enqueue to that message).
//   latency: opens a producer and the consumer here, in one process, so both
//            ends are read on one clock; then, `warmup + samples` times, one
//            job at a time: submit, note when the handler starts, wait for the
//            completion, next. A sample is handler start minus the instant
//            before the submit call.
//
// Then it waits for `close`, closes the consumer and exits.
import { loadSystem, type BenchParams, type JsonConfig, type SystemId } from './systems.ts';

export type ChildInit =
  | { type: 'init'; mode: 'drain' | 'e2e'; system: SystemId; config: JsonConfig; params: BenchParams; n: number }
  | { type: 'init'; mode: 'latency'; system: SystemId; config: JsonConfig; params: BenchParams; warmup: number; samples: number; firstPayload: number };

export type ChildMessage =
  | { type: 'ready' }
  | { type: 'done'; ms?: number; started: number; samplesMs?: number[] }
  | { type: 'error'; message: string };

/** After starting an idle consumer, how long to let it settle (subscribe, LISTEN, block on Redis) before work arrives. */
const SETTLE_MS = 250;

function send(msg: ChildMessage): void {
  process.send!(msg);
}

function nextMessage(type: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: { type?: string }): void => {
      if (m?.type === type) {
        process.off('message', on);
        resolve();
      }
    };
    process.on('message', on);
  });
}

async function main(init: ChildInit): Promise<void> {
  const system = await loadSystem(init.system);
  let started = 0;
  const waiting = new Map<number, (t: number) => void>();
  const consumer = await system.openConsumer(init.config, {
    concurrency: init.params.concurrency,
    params: init.params,
    onStart(i) {
      started++;
      if (waiting.size > 0) waiting.get(i)?.(performance.now());
    },
  });
  const closed = nextMessage('close');
  if (init.mode === 'drain') {
    send({ type: 'ready' });
    await nextMessage('go');
    const t0 = performance.now();
    await consumer.start();
    await consumer.completed(init.n);
    send({ type: 'done', ms: performance.now() - t0, started });
  } else if (init.mode === 'e2e') {
    await consumer.start();
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    send({ type: 'ready' });
    await consumer.completed(init.n);
    send({ type: 'done', started });
  } else if (init.mode === 'latency') {
    const producer = await system.openProducer(init.config);
    await consumer.start();
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const samplesMs: number[] = [];
    const total = init.warmup + init.samples;
    for (let k = 0; k < total; k++) {
      const i = init.firstPayload + k;
      const handlerStarted = new Promise<number>((resolve) => waiting.set(i, resolve));
      const t0 = performance.now();
      await producer.submitOne(i);
      const t1 = await handlerStarted;
      waiting.delete(i);
      await consumer.completed(k + 1);
      if (k >= init.warmup) samplesMs.push(t1 - t0);
    }
    await producer.close();
    send({ type: 'done', started, samplesMs });
  }
  await closed;
  await consumer.close();
}

// Never outlive the bench process.
process.once('disconnect', () => process.exit(1));

process.once('message', (init: ChildInit) => {
  main(init).then(
    () => process.exit(0),
    (err: Error) => {
      send({ type: 'error', message: err.stack ?? err.message });
      setTimeout(() => process.exit(1), 100);
    },
  );
});
