// SQLite's fast paths (if it measures any) against the engine's general path:
// one workload run both ways must end in the same rows.
import { fastPathEquivalence } from '../suite/fast-paths.ts';
import { openSqliteStore } from './store.ts';

fastPathEquivalence('sqlite', ({ clock, random, fastPaths }) => Promise.resolve(openSqliteStore({ path: ':memory:', clock, random, fastPaths })));
