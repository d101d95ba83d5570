// The seam between the store engine and a backend: how the engine runs SQL
// (an executor), and the few places where the two SQL dialects differ.
//
// Engine SQL is written once, with PostgreSQL-style numbered placeholders
// ($1, $2, ...; one may appear more than once). A backend's executor turns
// them into its own form and binds array parameters its own way; wherever the
// text itself must differ, the engine asks the dialect for the fragment.
import type { Clock, Random } from '../../types/clock.ts';
import type { IdFactory } from '../../types/ids.ts';
import { LIVE_ATTEMPT_STATES, TERMINAL_JOB_STATES } from '../../types/states.ts';
import type { TrustPolicy } from '../../trust/index.ts';
import type { Row } from '../rows.ts';
import { EXCLUDING_ATTEMPT_STATES } from '../claiming.ts';

export type Param = string | number | boolean | null | readonly string[] | readonly number[] | readonly (string | null)[];

/** SQL on one connection: inside a transaction, or autocommit reads. */
export interface Exec {
  all(text: string, params?: readonly Param[]): Promise<Row[]>;
  get(text: string, params?: readonly Param[]): Promise<Row | undefined>;
  /** Runs a statement and returns how many rows it touched. */
  run(text: string, params?: readonly Param[]): Promise<number>;
}

/** A write transaction in progress. */
export interface Tx extends Exec {
  /** Tells other coordinators sharing the database, once the transaction commits, that work may be claimable. */
  wake(): void;
}

export interface WriteOptions {
  /**
   * False when losing the write in a power cut is harmless, because it is
   * redone or refused later (a claim, a heartbeat, a sweep): a backend may
   * then commit it without waiting for the disk.
   */
  durable: boolean;
  /**
   * True when fn runs a single statement (plus reads): it is atomic on its own,
   * so a backend may run it outside an explicit transaction.
   */
  single?: boolean;
}

/** Where the engine's SQL text differs between backends. */
export interface Dialect {
  /** `<expr> IN (list)` where the list is one array parameter, e.g. inList('$1'). */
  inList(param: string, type?: 'text' | 'int' | 'bigint'): string;
  /** `<expr> NOT IN (list)`, the same way. */
  notInList(param: string, type?: 'text' | 'int' | 'bigint'): string;
  /** True when an array parameter is NULL (a list not given). */
  isNullList(param: string): string;
  /** A typed NULL, for the columns of a UNION. */
  nullOf(type: 'text' | 'int' | 'bigint'): string;
  /** Bytes of a text value in UTF-8. */
  octetLength(text: string): string;
  /** The larger of two values: greatest(a, b) or max(a, b). */
  greatest(a: string, b: string): string;
  /** The text of `key` in a JSON object column. */
  jsonText(column: string, keyParam: string): string;
  /** True when row locks exist: the engine then takes them, in its one lock order. */
  readonly rowLocks: boolean;
  /** ' FOR UPDATE', or '' where every write transaction holds the whole database. */
  readonly forUpdate: string;
  readonly forShare: string;
  readonly skipLocked: string;
  /** An index hint for a query whose plan the backend measured: 'INDEXED BY name', or ''. */
  indexedBy(name: string): string;
}

/** What the engine's lifecycle decisions need besides SQL. */
export interface Context {
  readonly d: Dialect;
  readonly clock: Clock;
  readonly random: Random;
  readonly newId: IdFactory;
  readonly trust: TrustPolicy;
  /** A worker not seen for this long is shown offline and gets no work. */
  readonly offlineAfterMs: number;
}

const list = (xs: readonly string[]): string => `(${xs.map((x) => `'${x}'`).join(', ')})`;
/** SQL lists of states, for `state IN ${LIVE}`. */
export const LIVE = list(LIVE_ATTEMPT_STATES);
export const TERMINAL = list(TERMINAL_JOB_STATES);
export const EXCLUDING = list(EXCLUDING_ATTEMPT_STATES);
export const J = JSON.stringify;

export const str = (v: unknown): string => String(v);
export const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** Ids in one order, so that row locks are always taken in it. */
export function sortedIds(ids: Iterable<string>): string[] {
  return [...new Set(ids)].sort();
}
