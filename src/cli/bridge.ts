// `gaffer bridge amqp`: serve a RabbitMQ RPC queue with Gaffer jobs
// (src/bridge/amqp.ts). Settings: `[bridge.amqp]` of a TOML file, then GAFFER_*
// variables, then flags; docs/configuration.md lists them.
import type { Command } from 'commander';
import { pino } from 'pino';
import type { BridgeMap, BridgeSettings } from '../bridge/amqp.ts';
import { PAYLOAD_FORMATS, type PayloadFormat } from '../bridge/codec.ts';
import { GafferClient } from '../client/client.ts';
import { GafferError } from '../types/errors.ts';
import { BRIDGE_DEFAULTS, LIMITS } from '../types/limits.ts';
import { QUEUE_PATTERN } from '../types/schemas.ts';
import { DEFAULT_URL } from './common.ts';
import { int, readToml, withoutPassword } from './config.ts';

export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
/** Longest AMQP queue name (a shortstr). */
const AMQP_QUEUE_MAX_BYTES = 255;

export interface AmqpBridgeFlags {
  url?: string;
  map?: string[];
  payload?: string;
  prefetch?: string;
  awaitMax?: string;
  gafferUrl?: string;
  token?: string;
  config?: string;
}

export interface AmqpBridgePlan {
  url: string;
  gafferUrl: string;
  token?: string;
  maps: BridgeMap[];
  payload: PayloadFormat;
  settings: BridgeSettings;
}

type Table = Record<string, unknown>;

function parseMap(text: string, where: string): BridgeMap {
  const at = text.indexOf('=');
  if (at <= 0 || at === text.length - 1) throw new GafferError('INVALID_INPUT', `${where} takes AMQP_QUEUE=GAFFER_QUEUE, got "${text}"`);
  return checkMap({ from: text.slice(0, at), to: text.slice(at + 1) }, where);
}

function checkMap(map: BridgeMap, where: string): BridgeMap {
  if (Buffer.byteLength(map.from) > AMQP_QUEUE_MAX_BYTES || map.from.startsWith('amq.')) {
    throw new GafferError('INVALID_INPUT', `${where}: "${map.from}" is not an AMQP queue name a bridge may declare (at most 255 bytes, not amq.*)`);
  }
  if (map.to.length > LIMITS.queueNameMaxChars || !new RegExp(QUEUE_PATTERN).test(map.to)) throw new GafferError('INVALID_INPUT', `${where}: "${map.to}" is not a Gaffer queue name`);
  return map;
}

function settingsOf(file: Table, flags: AmqpBridgeFlags): BridgeSettings {
  const settings: BridgeSettings = { ...BRIDGE_DEFAULTS };
  for (const name of Object.keys(BRIDGE_DEFAULTS) as (keyof BridgeSettings)[]) {
    const v = int(file[name], `bridge.amqp.${name}`);
    if (v !== undefined) settings[name] = v;
  }
  settings.prefetchMaxMessages = int(flags.prefetch, '--prefetch') ?? settings.prefetchMaxMessages;
  settings.awaitMaxJobs = int(flags.awaitMax, '--await-max') ?? settings.awaitMaxJobs;
  for (const [name, v] of Object.entries(settings)) {
    if (v < 1) throw new GafferError('INVALID_INPUT', `bridge.amqp.${name} must be at least 1`);
  }
  if (settings.prefetchMaxMessages > 65_535 || settings.awaitMaxJobs > 65_535) {
    throw new GafferError('INVALID_INPUT', 'an AMQP prefetch is at most 65535: lower prefetchMaxMessages or awaitMaxJobs');
  }
  return settings;
}

/** The bridge's plan: `[bridge.amqp]` of the config file, then GAFFER_* variables, then flags. */
export function amqpBridgePlan(flags: AmqpBridgeFlags, env: NodeJS.ProcessEnv): AmqpBridgePlan {
  const root = flags.config === undefined ? {} : readToml(flags.config);
  const bridge = (root.bridge ?? {}) as Table;
  const file = (bridge.amqp ?? {}) as Table;
  if (typeof file !== 'object' || Array.isArray(file)) throw new GafferError('INVALID_INPUT', '[bridge.amqp] must be a table');
  const known = new Set(['url', 'gafferUrl', 'token', 'map', 'payload', ...Object.keys(BRIDGE_DEFAULTS)]);
  const unknown = Object.keys(file).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new GafferError('INVALID_INPUT', `[bridge.amqp] has unknown keys: ${unknown.join(', ')}`);
  const str = (v: unknown, where: string): string | undefined => {
    if (v !== undefined && typeof v !== 'string') throw new GafferError('INVALID_INPUT', `${where} must be a string`);
    return v;
  };
  const fileMap = (file.map ?? {}) as Table;
  const maps =
    flags.map && flags.map.length > 0
      ? flags.map.map((m) => parseMap(m, '--map'))
      : Object.entries(fileMap).map(([from, to]) => checkMap({ from, to: str(to, `bridge.amqp.map.${from}`)! }, `bridge.amqp.map.${from}`));
  if (maps.length === 0) throw new GafferError('INVALID_INPUT', 'the bridge needs a queue to serve: --map AMQP_QUEUE=GAFFER_QUEUE or [bridge.amqp.map]');
  if (new Set(maps.map((m) => m.from)).size !== maps.length) throw new GafferError('INVALID_INPUT', 'an AMQP queue is mapped twice');
  const payload = flags.payload ?? str(file.payload, 'bridge.amqp.payload') ?? 'json';
  if (!PAYLOAD_FORMATS.includes(payload as PayloadFormat)) throw new GafferError('INVALID_INPUT', `the payload format is json, text or bytes, got "${payload}"`);
  const token = flags.token ?? env.GAFFER_TOKEN ?? str(file.token, 'bridge.amqp.token');
  return {
    url: flags.url ?? env.GAFFER_AMQP_URL ?? str(file.url, 'bridge.amqp.url') ?? DEFAULT_AMQP_URL,
    gafferUrl: flags.gafferUrl ?? env.GAFFER_URL ?? str(file.gafferUrl, 'bridge.amqp.gafferUrl') ?? DEFAULT_URL,
    ...(token ? { token } : {}),
    maps,
    payload: payload as PayloadFormat,
    settings: settingsOf(file, flags),
  };
}

/** The broker URL as it may be logged: without its password. */
const describeAmqp = (url: string): string => withoutPassword(url, '(an AMQP URL that does not parse)');

export function registerBridge(program: Command): void {
  const bridge = program.command('bridge').description('serve other systems\' requests with Gaffer jobs');
  bridge
    .command('amqp')
    .description('a RabbitMQ RPC server: each request on an AMQP queue becomes a job; its result is published to the request\'s replyTo')
    .option('--url <amqp-url>', `the broker (env GAFFER_AMQP_URL, default ${DEFAULT_AMQP_URL})`)
    .option('--map <amqp=gaffer>', 'serve AMQP queue amqp with jobs of Gaffer queue gaffer (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--payload <format>', 'json (default): the body is JSON; text: a UTF-8 string; bytes: a base64 string')
    .option('--prefetch <n>', `requests held unacknowledged at once, per queue (default ${BRIDGE_DEFAULTS.prefetchMaxMessages})`)
    .option('--await-max <n>', `jobs awaited at once, per queue (default ${BRIDGE_DEFAULTS.awaitMaxJobs})`)
    .option('--gaffer-url <url>', `the coordinator (env GAFFER_URL, default ${DEFAULT_URL})`)
    .option('--token <token>', 'bearer token for the coordinator (env GAFFER_TOKEN)')
    .option('--config <file>', 'TOML config file with a [bridge.amqp] table')
    .option('--log-level <level>', 'fatal, error, warn, info', 'info')
    .action(async (opts: AmqpBridgeFlags & { logLevel: string }) => {
      const plan = amqpBridgePlan(opts, process.env);
      const logger = pino({ level: opts.logLevel });
      const client = new GafferClient({ url: plan.gafferUrl, ...(plan.token ? { token: plan.token } : {}) });
      // Loaded here, not at start-up: every other gaffer command starts without the AMQP client.
      const { AmqpBridge } = await import('../bridge/amqp.ts');
      const running = new AmqpBridge({ url: plan.url, client, maps: plan.maps, payload: plan.payload, settings: plan.settings, log: logger });
      try {
        await running.start();
      } catch (err) {
        throw new GafferError('NOT_READY', `cannot start the bridge on ${describeAmqp(plan.url)}: ${(err as Error).message}`);
      }
      const maps = plan.maps.map((m) => `${m.from} -> ${m.to}`).join(', ');
      console.log(`gaffer: bridging ${describeAmqp(plan.url)} to ${plan.gafferUrl} (${maps})`);
      const stop = (): void => void running.stop().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
