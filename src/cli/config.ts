// Configuration: a TOML file, then environment variables, then flags. Each
// layer overrides the one before it. docs/configuration.md lists every key.
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { SCOPES, type Scope, type TokenConfig } from '../server/auth.ts';
import type { JobDefaults } from '../coordinator/validate.ts';
import { GafferError } from '../types/errors.ts';

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 7070,
  db: '.gaffer/gaffer.db',
} as const;

export interface ServeConfig {
  host: string;
  port: number;
  /** A SQLite file, or a postgres:// (postgresql://) URL: several coordinators may share one PostgreSQL database. */
  db: string;
  /** PostgreSQL only: the schema Gaffer's tables live in (the store's default when left out). */
  pgSchema?: string;
  /** PostgreSQL only: most connections this coordinator opens (the store's default when left out). */
  pgPoolMax?: number;
  tokens: TokenConfig[];
  queues: Record<string, JobDefaults>;
}

/** True when `db` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(db);
}

/** The database as it may be printed and logged: a PostgreSQL URL without its password. */
export function describeDb(db: string): string {
  if (!isPostgresUrl(db)) return db;
  try {
    const u = new URL(db);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(a URL that does not parse)';
  }
}

/** A schema name as the PostgreSQL store takes it: a letter or _, then letters, digits or _, at most 63. */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

type Table = Record<string, unknown>;

export function readToml(path: string): Table {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new GafferError('INVALID_INPUT', `cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    return parseToml(text) as Table;
  } catch (err) {
    throw new GafferError('INVALID_INPUT', `config file ${path} is not valid TOML: ${(err as Error).message}`);
  }
}

function table(v: unknown, where: string): Table {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new GafferError('INVALID_INPUT', `${where} must be a table`);
  return v as Table;
}

function str(v: unknown, where: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new GafferError('INVALID_INPUT', `${where} must be a string`);
  return v;
}

export function int(v: unknown, where: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new GafferError('INVALID_INPUT', `${where} must be a whole number`);
  return n;
}

function tokensOf(v: unknown): TokenConfig[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new GafferError('INVALID_INPUT', 'tokens must be an array of tables ([[tokens]])');
  return v.map((t, i) => {
    const entry = table(t, `tokens[${i}]`);
    const token = str(entry.token, `tokens[${i}].token`);
    if (!token) throw new GafferError('INVALID_INPUT', `tokens[${i}].token is required`);
    const scopes = (entry.scopes ?? SCOPES) as unknown;
    if (!Array.isArray(scopes) || !scopes.every((s) => SCOPES.includes(s as Scope))) {
      throw new GafferError('INVALID_INPUT', `tokens[${i}].scopes must list some of ${SCOPES.join(', ')}`);
    }
    const name = str(entry.name, `tokens[${i}].name`);
    return { token, scopes: scopes as Scope[], ...(name ? { name } : {}) };
  });
}

/** Merges file < env < flags for `gaffer serve`. */
export function serveConfig(
  flags: { host?: string; port?: string; db?: string; pgSchema?: string; pgPoolMax?: string; config?: string; token?: string },
  env: NodeJS.ProcessEnv,
): ServeConfig {
  const file = flags.config ? readToml(flags.config) : {};
  const server = table(file.server, 'server');
  const host = flags.host ?? env.GAFFER_HOST ?? str(server.host, 'server.host') ?? SERVE_DEFAULTS.host;
  const port = int(flags.port, '--port') ?? int(env.GAFFER_PORT, 'GAFFER_PORT') ?? int(server.port, 'server.port') ?? SERVE_DEFAULTS.port;
  const db = flags.db ?? env.GAFFER_DB ?? str(server.db, 'server.db') ?? SERVE_DEFAULTS.db;
  const pgSchema = flags.pgSchema ?? (env.GAFFER_PG_SCHEMA || undefined) ?? str(server.pgSchema, 'server.pgSchema');
  if (pgSchema !== undefined && !SCHEMA_NAME.test(pgSchema)) {
    throw new GafferError('INVALID_INPUT', `the PostgreSQL schema "${pgSchema}" must be 1 to 63 letters, digits or _, not starting with a digit`);
  }
  const pgPoolMax =
    int(flags.pgPoolMax, '--pg-pool-max') ?? int(env.GAFFER_PG_POOL_MAX, 'GAFFER_PG_POOL_MAX') ?? int(server.pgPoolMax, 'server.pgPoolMax');
  if (pgPoolMax !== undefined && pgPoolMax < 1) throw new GafferError('INVALID_INPUT', 'the PostgreSQL pool needs at least 1 connection');
  if ((pgSchema !== undefined || pgPoolMax !== undefined) && !isPostgresUrl(db)) {
    throw new GafferError('INVALID_INPUT', 'pgSchema and pgPoolMax apply to a PostgreSQL database: give --db postgres://...');
  }
  const single = flags.token ?? env.GAFFER_TOKEN;
  const tokens = single ? [{ token: single, scopes: SCOPES, name: 'default' }] : tokensOf(file.tokens);
  const queues: Record<string, JobDefaults> = {};
  for (const [name, q] of Object.entries(table(file.queues, 'queues'))) queues[name] = queueDefaults(table(q, `queues.${name}`), name);
  return { host, port, db, ...(pgSchema !== undefined ? { pgSchema } : {}), ...(pgPoolMax !== undefined ? { pgPoolMax } : {}), tokens, queues };
}

function queueDefaults(q: Table, name: string): JobDefaults {
  const out: JobDefaults = {};
  const at = (k: string): string => `queues.${name}.${k}`;
  const put = <K extends keyof JobDefaults>(k: K, v: JobDefaults[K] | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  put('priority', int(q.priority, at('priority')));
  put('timeoutMs', int(q.timeoutMs, at('timeoutMs')));
  put('heartbeatTimeoutMs', int(q.heartbeatTimeoutMs, at('heartbeatTimeoutMs')));
  put('maxAttempts', int(q.maxAttempts, at('maxAttempts')));
  put('replicas', int(q.replicas, at('replicas')));
  put('quorum', int(q.quorum, at('quorum')));
  const base = int(q.backoffBaseMs, at('backoffBaseMs'));
  const max = int(q.backoffMaxMs, at('backoffMaxMs'));
  if (base !== undefined && max !== undefined) out.backoff = { baseMs: base, maxMs: max };
  else if (base !== undefined || max !== undefined) {
    throw new GafferError('INVALID_INPUT', `${at('backoffBaseMs')} and ${at('backoffMaxMs')} go together`);
  }
  return out;
}
