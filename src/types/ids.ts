// Time-sortable ids (ULID: 48 bits of milliseconds, 80 random bits, Crockford
// base 32), monotonic within a millisecond, drawn from an injected clock and
// random source so that tests replay exactly.
import type { Clock, Random } from './clock.ts';

/** Crockford base 32, in code-unit order. */
export const ID_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ALPHABET = ID_ALPHABET;
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;

export type IdFactory = () => string;

export function idFactory(clock: Pick<Clock, 'now'>, random: Random): IdFactory {
  let lastMs = -1;
  let lastRandom: number[] = [];
  return () => {
    const ms = clock.now();
    if (ms <= lastMs) {
      incrementBase32(lastRandom);
    } else {
      lastMs = ms;
      lastRandom = Array.from({ length: RANDOM_CHARS }, () => Math.floor(random.next() * 32));
    }
    return encodeTime(lastMs) + lastRandom.map((d) => ALPHABET[d]).join('');
  };
}

function encodeTime(ms: number): string {
  let out = '';
  let rest = Math.floor(ms);
  for (let i = 0; i < TIME_CHARS; i++) {
    out = ALPHABET[rest % 32] + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

function incrementBase32(digits: number[]): void {
  for (let i = digits.length - 1; i >= 0; i--) {
    if (digits[i]! < 31) {
      digits[i]!++;
      return;
    }
    digits[i] = 0;
  }
  throw new Error('id space for this millisecond is exhausted');
}

/**
 * An id of the same shape whose 80 random bits are all fresh: unlike
 * idFactory's, two made in one millisecond do not follow one another, so one
 * cannot be guessed from another (worker ids the coordinator hands out).
 */
export function unguessableId(clock: Pick<Clock, 'now'>, random: Random): string {
  return encodeTime(clock.now()) + Array.from({ length: RANDOM_CHARS }, () => ALPHABET[Math.floor(random.next() * 32)]).join('');
}

/** The shape of every id the coordinator issues (jobs, attempts, workers): 26 characters of ALPHABET. */
export const ISSUED_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Whether `s` has the shape of an issued id: safe as a path segment, since it has no dot, slash or other separator. */
export function isIssuedId(s: unknown): s is string {
  return typeof s === 'string' && ISSUED_ID_PATTERN.test(s);
}

/** Milliseconds encoded in an id made by idFactory. */
export function idTimeMs(id: string): number {
  let ms = 0;
  for (let i = 0; i < TIME_CHARS; i++) ms = ms * 32 + ALPHABET.indexOf(id[i] ?? '0');
  return ms;
}

/** A random token (hex) for leases: unguessable, so a lease cannot be forged. */
export function randomToken(random: Random, bytes = 16): string {
  let out = '';
  for (let i = 0; i < bytes; i++) out += Math.floor(random.next() * 256).toString(16).padStart(2, '0');
  return out;
}
