// Shares of the ready jobs, for coordinators sharing one database: a job's
// share is the last two characters of its id (both random, or counting up
// within one millisecond: see ids.ts), so 32 x 32 = 1,024 shares of about
// equal size. The store filters on the same characters in SQL, so a share
// needs no column and no migration of the jobs.
import { ID_ALPHABET } from './ids.ts';

/** The share is `SHARE_CHARS` characters from character `SHARE_FROM_CHAR` (1-based, as SQL's substr counts). */
export const SHARE_FROM_CHAR = 25;
export const SHARE_CHARS = 2;
export const SHARE_COUNT = ID_ALPHABET.length ** SHARE_CHARS;

/** Every share, in order. */
export const ALL_SHARES: readonly string[] = ID_ALPHABET.split('').flatMap((a) => ID_ALPHABET.split('').map((b) => a + b));

/** The share of a job id (its last two characters). */
export function shareOf(id: string): string {
  return id.slice(SHARE_FROM_CHAR - 1, SHARE_FROM_CHAR - 1 + SHARE_CHARS);
}
