// `[pipelines.NAME]` in the serve config: the example sealing template reads as
// the devstack's, and a template that cannot run is refused at start, naming
// what is wrong.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { checkTemplate } from '../coordinator/pipelines.ts';
import { isGafferError } from '../types/errors.ts';
import { serveConfig } from './config.ts';
import { SEALING_TEMPLATE, SEALING_TEMPLATE_NAME } from './demo-sealing.ts';

const dir = mkdtempSync(join(tmpdir(), 'gaffer-pipeline-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const EXAMPLE = fileURLToPath(new URL('../../examples/sealing-pipeline.toml', import.meta.url));

describe('serve config: pipelines', () => {
  it('reads examples/sealing-pipeline.toml: six phases, the same template as the devstack\'s', () => {
    const config = serveConfig({ config: EXAMPLE }, {});
    const sealing = config.pipelines?.[SEALING_TEMPLATE_NAME];
    assert.ok(sealing);
    assert.deepEqual(sealing, checkTemplate(SEALING_TEMPLATE, 'devstack'));
    assert.deepEqual(sealing.phases.map((p) => p.name), ['ap', 'pc1', 'pc2', 'c1', 'c2', 'finalize']);
    assert.equal(config.queues['seal.pc1']?.timeoutMs, 39_600_000);
  });

  it('fills the defaults: one job a phase, no edges, onFailure fail', () => {
    const path = join(dir, 'min.toml');
    writeFileSync(path, '[[pipelines.one.phases]]\nname = "only"\nqueue = "q"\n');
    assert.deepEqual(serveConfig({ config: path }, {}).pipelines, { one: { onFailure: 'fail', phases: [{ name: 'only', queue: 'q', count: 1, after: [] }] } });
  });

  it('refuses a template that cannot run, naming what is wrong', () => {
    const phase = (name: string, more = ''): string => `[[pipelines.p.phases]]\nname = "${name}"\nqueue = "q"\n${more}\n`;
    const cases: [string, RegExp][] = [
      [phase('a', 'after = ["b"]') + phase('b'), /pipelines\.p\.phases\[0\]\.after names "b", which is not a phase listed before "a"/],
      [phase('a') + phase('a'), /pipelines\.p\.phases\[1\]: another phase is named "a" already/],
      [phase('a', 'count = 0'), /pipelines\.p\.phases\.0\.count/],
      [phase('a', 'affinityMode = "require"'), /affinityMode goes with affinity = "parent"/],
      [phase('a', 'affinity = "child"'), /pipelines\.p\.phases\.0\.affinity/],
      [phase('a', 'colour = "blue"'), /unknown field "colour"/],
      ['[pipelines.p]\nonFailure = "shrug"\n' + phase('a'), /pipelines\.p\.onFailure/],
      ['[pipelines.p]\n', /pipelines\.p must have required property 'phases'/],
      [[0, 1, 2, 3].map((i) => phase(`p${i}`, 'count = 256')).join(''), /makes 1024 jobs an instance; the limit is 1000 \(pipelineJobsMax\)/],
      [phase('a', 'maxAttempts = 0'), /pipelines\.p\.phases\.0\.maxAttempts/],
    ];
    cases.forEach(([text, message], i) => {
      const path = join(dir, `bad-${i}.toml`);
      writeFileSync(path, text);
      assert.throws(() => serveConfig({ config: path }, {}), (e) => (isGafferError(e, 'INVALID_INPUT') || isGafferError(e, 'UNKNOWN_FIELD')) && message.test(e.message), text);
    });
  });
});
