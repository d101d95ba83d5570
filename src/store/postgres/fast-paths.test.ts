// PostgreSQL's fast paths against the engine's general path: the whole
// conformance suite with the fast paths off, and one workload run both ways
// that must end in the same rows.
import { storeContract } from '../suite/contract.ts';
import { fastPathEquivalence } from '../suite/fast-paths.ts';
import { openTestStore, pgContractOptions } from './testing.ts';

storeContract('postgres, general path only', (ctx) => openTestStore(ctx, { fastPaths: false }), pgContractOptions);
fastPathEquivalence('postgres', ({ clock, random, fastPaths }) => openTestStore({ clock, random }, { fastPaths }));
