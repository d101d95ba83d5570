// Pipelines over HTTP with the client SDK: a template from the config runs end
// to end on in-process workers (fan-out, fan-in, each child seeing its
// parents' results), a submit is idempotent by key, listings filter and page,
// and the answers match the OpenAPI document's schemas.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { GafferClient } from '../client/client.ts';
import { Coordinator } from '../coordinator/coordinator.ts';
import { LocalWorker } from '../coordinator/local-worker.ts';
import { checkTemplate } from '../coordinator/pipelines.ts';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.ts';
import { systemClock, systemRandom } from '../types/clock.ts';
import type { Assignment, Json } from '../types/model.ts';
import type { PipelineDetail } from '../types/pipeline.ts';
import { Auth } from './auth.ts';
import { buildHttpApp } from './http.ts';
import { openApiChecker } from './testing.ts';

const TOKEN = 'pipelines-client-token';

const TEMPLATE = checkTemplate(
  {
    onFailure: 'cancel',
    phases: [
      { name: 'split', queue: 'pl.split' },
      { name: 'work', queue: 'pl.work', after: ['split'], count: 3, affinity: 'parent' },
      { name: 'join', queue: 'pl.join', after: ['work'] },
    ],
  },
  'pipelines.fan',
);

describe('pipelines over HTTP', () => {
  let dir: string;
  let store: SqliteStore;
  let coordinator: Coordinator;
  let worker: LocalWorker;
  let app: FastifyInstance;
  let client: GafferClient;
  let base: string;
  /** What each join attempt saw of its parents. */
  const joined: Json[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gaffer-pipelines-http-'));
    store = openSqliteStore({ path: join(dir, 'gaffer.db'), clock: systemClock, random: systemRandom(), synchronous: 'normal' });
    coordinator = new Coordinator({ store, clock: systemClock, pipelines: { fan: TEMPLATE } });
    coordinator.start();
    const sum = (ctx: { assignment: Assignment }): number =>
      (ctx.assignment.parents ?? []).reduce((n, p) => n + ('result' in p ? Number((p.result as { n?: number }).n ?? 0) : 0), 0);
    worker = new LocalWorker({
      coordinator,
      clock: systemClock,
      spec: { name: 'local', labels: {}, cores: 4, memoryMb: 1024, gpuIds: [], keys: [] },
      handlers: {
        'pl.split': { slots: 2, handler: (payload) => ({ n: Number((payload as { start: number }).start) }) },
        'pl.work': { slots: 3, handler: (_p, ctx) => ({ n: sum(ctx) + ctx.assignment.pipeline!.index }) },
        'pl.join': {
          slots: 1,
          handler: (_p, ctx) => {
            joined.push(ctx.assignment.parents as unknown as Json);
            return { n: sum(ctx) };
          },
        },
      },
      heartbeatIntervalMs: 1000,
    });
    await worker.start();
    app = await buildHttpApp({ coordinator, auth: new Auth([{ token: TOKEN, scopes: ['client'] }]), logger: pino({ level: 'silent' }) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    client = new GafferClient({ url: base, token: TOKEN });
  });

  after(async () => {
    await worker.stop();
    await app.close();
    await coordinator.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ended = async (id: string): Promise<PipelineDetail> => {
    for (let i = 0; i < 200; i++) {
      const p = await client.pipeline(id);
      if (p.state !== 'running') return p;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`pipeline ${id} did not end`);
  };

  it('runs a configured template end to end: fan-out, fan-in, results flowing to the children', async () => {
    const { pipeline, created } = await client.submitPipeline({ template: 'fan', payload: { start: 10 }, key: 'run-1' });
    assert.equal(created, true);
    assert.deepEqual(pipeline.phases.map((ph) => [ph.name, ph.jobs.length]), [['split', 1], ['work', 3], ['join', 1]]);
    const done = await ended(pipeline.id);
    assert.equal(done.state, 'succeeded');
    const joinJob = await client.get(done.phases[2]!.jobs[0]!.id);
    // split gives 10; work i gives 10 + i; join sums them: 10 + 11 + 12.
    assert.deepEqual(joinJob.result, { n: 33 });
    assert.deepEqual(joinJob.pipeline, { id: pipeline.id, phase: 'join', index: 0 });
    assert.equal((joined[0] as unknown[]).length, 3);
    // The same key: the same instance, nothing new.
    const again = await client.submitPipeline({ template: 'fan', payload: { start: 99 }, key: 'run-1' });
    assert.deepEqual([again.created, again.pipeline.id, again.pipeline.state], [false, pipeline.id, 'succeeded']);
  });

  it('takes an inline template, lists by template and state, and refuses what it cannot run', async () => {
    const inline = { name: 'solo', phases: [{ name: 'only', queue: 'pl.split' }] };
    const { pipeline } = await client.submitPipeline({ template: inline, payload: { start: 1 } });
    assert.equal((await ended(pipeline.id)).state, 'succeeded');
    const solo = await client.pipelines({ template: 'solo' });
    assert.deepEqual(solo.pipelines.map((p) => p.id), [pipeline.id]);
    assert.ok((await client.pipelines({ state: 'succeeded', limit: 1 })).nextCursor);
    assert.deepEqual(Object.keys(await client.pipelineTemplates()), ['fan']);
    await assert.rejects(client.submitPipeline({ template: 'nope' }), { code: 'UNKNOWN_TEMPLATE' });
    await assert.rejects(client.pipeline('01ARZ3NDEKTSV4RRFFQ69G5FAV'), { code: 'PIPELINE_NOT_FOUND' });
    const backwards = { phases: [{ name: 'a', queue: 'q', after: ['b'] }, { name: 'b', queue: 'q' }] };
    await assert.rejects(client.submitPipeline({ template: backwards }), { code: 'INVALID_INPUT' });
    await assert.rejects(client.submitPipeline({ template: 'fan', extra: 1 } as never), { code: 'UNKNOWN_FIELD' });
  });

  it('answers as the OpenAPI document says', async () => {
    const doc = (await (await fetch(`${base}/v1/openapi.json`)).json()) as { components: { schemas: Record<string, unknown> } };
    const { conforms } = openApiChecker(doc);
    const { pipeline } = await client.submitPipeline({ template: 'fan', payload: { start: 0 } });
    conforms('PipelineDetail', pipeline);
    conforms('PipelineDetail', await ended(pipeline.id));
    conforms('PipelinePage', await client.pipelines());
    conforms('PipelineTemplateList', { templates: await client.pipelineTemplates() });
    conforms('Job', await client.get(pipeline.phases[1]!.jobs[0]!.id));
    conforms('PipelineSpec', { template: 'fan', payload: { start: 0 }, key: 'k', locality: 'sector-1' });
  });
});
