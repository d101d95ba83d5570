// `gaffer bridge amqp`'s settings: [bridge.amqp] of a TOML file, then GAFFER_* variables, then flags.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BRIDGE_DEFAULTS } from '../types/limits.ts';
import { amqpBridgePlan, DEFAULT_AMQP_URL } from './bridge.ts';
import { DEFAULT_URL } from './common.ts';

const dir = mkdtempSync(join(tmpdir(), 'gaffer-bridge-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('gaffer bridge amqp settings', () => {
  it('has defaults for all but the map', () => {
    const plan = amqpBridgePlan({ map: ['rpc_queue=prove'] }, {});
    assert.deepEqual(plan, { url: DEFAULT_AMQP_URL, gafferUrl: DEFAULT_URL, maps: [{ from: 'rpc_queue', to: 'prove' }], payload: 'json', settings: { ...BRIDGE_DEFAULTS } });
    assert.throws(() => amqpBridgePlan({}, {}), { code: 'INVALID_INPUT', message: /needs a queue/ });
  });

  it('reads [bridge.amqp], then the environment, then flags', () => {
    const config = file('bridge.toml', [
      '[bridge.amqp]', 'url = "amqp://file"', 'gafferUrl = "http://file:1"', 'payload = "bytes"', 'awaitMaxJobs = 10', 'commitBatchMaxOps = 4',
      '[bridge.amqp.map]', 'rpc_queue = "prove"', 'other = "prove.outer"',
    ].join('\n'));
    const fromFile = amqpBridgePlan({ config }, {});
    assert.equal(fromFile.url, 'amqp://file');
    assert.equal(fromFile.payload, 'bytes');
    assert.deepEqual(fromFile.maps, [{ from: 'rpc_queue', to: 'prove' }, { from: 'other', to: 'prove.outer' }]);
    assert.equal(fromFile.settings.awaitMaxJobs, 10);
    assert.equal(fromFile.settings.commitBatchMaxOps, 4);
    const fromEnv = amqpBridgePlan({ config }, { GAFFER_AMQP_URL: 'amqp://env', GAFFER_URL: 'http://env:2', GAFFER_TOKEN: 't' });
    assert.equal(fromEnv.url, 'amqp://env');
    assert.equal(fromEnv.gafferUrl, 'http://env:2');
    assert.equal(fromEnv.token, 't');
    const fromFlags = amqpBridgePlan({ config, url: 'amqp://flag', map: ['a=b'], payload: 'text', prefetch: '5', awaitMax: '6' }, { GAFFER_AMQP_URL: 'amqp://env' });
    assert.equal(fromFlags.url, 'amqp://flag');
    assert.deepEqual(fromFlags.maps, [{ from: 'a', to: 'b' }]);
    assert.equal(fromFlags.payload, 'text');
    assert.equal(fromFlags.settings.prefetchMaxMessages, 5);
    assert.equal(fromFlags.settings.awaitMaxJobs, 6);
  });

  it('refuses what it cannot serve', () => {
    for (const map of ['rpc_queue', '=prove', 'rpc_queue=', 'amq.x=prove', 'rpc_queue=no spaces']) {
      assert.throws(() => amqpBridgePlan({ map: [map] }, {}), { code: 'INVALID_INPUT' }, map);
    }
    assert.throws(() => amqpBridgePlan({ map: ['a=b', 'a=c'] }, {}), { code: 'INVALID_INPUT', message: /twice/ });
    assert.throws(() => amqpBridgePlan({ map: ['a=b'], payload: 'xml' }, {}), { code: 'INVALID_INPUT' });
    assert.throws(() => amqpBridgePlan({ map: ['a=b'], prefetch: '0' }, {}), { code: 'INVALID_INPUT' });
    assert.throws(() => amqpBridgePlan({ map: ['a=b'], prefetch: '70000' }, {}), { code: 'INVALID_INPUT' });
    const unknown = file('unknown.toml', '[bridge.amqp]\nprefetch = 3\n');
    assert.throws(() => amqpBridgePlan({ config: unknown, map: ['a=b'] }, {}), { code: 'INVALID_INPUT', message: /unknown keys: prefetch/ });
  });
});
