// The sealing template of examples/sealing-pipeline.toml (a test keeps the two
// alike), for the devstack: six phases, AP, PC1, PC2, C1, C2 and Finalize,
// with a sealer's resources. The devstack's handlers scale the run times down
// to a fraction of a second of hashing each (demo-handlers.ts).
import type { PipelineTemplate } from '../types/pipeline.ts';

const GIB = 1024;

export const SEALING_TEMPLATE_NAME = 'sealing';

export const SEALING_TEMPLATE: Required<PipelineTemplate> = {
  onFailure: 'cancel',
  phases: [
    { name: 'ap', queue: 'seal.ap', affinity: 'parent', affinityMode: 'require', requires: { cores: 1, memoryMb: 4 * GIB }, maxAttempts: 3 },
    { name: 'pc1', queue: 'seal.pc1', after: ['ap'], affinity: 'parent', affinityMode: 'require', requires: { cores: 4, memoryMb: 64 * GIB }, maxAttempts: 2, priority: 10 },
    { name: 'pc2', queue: 'seal.pc2', after: ['pc1'], affinity: 'parent', affinityMode: 'require', requires: { cores: 8, memoryMb: 48 * GIB, gpus: 1 }, maxAttempts: 3, priority: 20 },
    { name: 'c1', queue: 'seal.c1', after: ['pc2'], affinity: 'parent', affinityMode: 'require', requires: { cores: 1, memoryMb: 2 * GIB }, maxAttempts: 3, priority: 30 },
    { name: 'c2', queue: 'seal.c2', after: ['c1'], requires: { cores: 16, memoryMb: 192 * GIB, gpus: 1 }, maxAttempts: 3, priority: 40 },
    { name: 'finalize', queue: 'seal.finalize', after: ['c2'], affinity: 'parent', affinityMode: 'require', requires: { cores: 1, memoryMb: 2 * GIB }, maxAttempts: 5, priority: 50 },
  ],
};

/** sha256 rounds of a phase whose payload gives none (`rounds`), before its factor below. */
export const SEALING_ROUNDS_DEFAULT = 20_000;

/** The demo's share of hashing per phase, after the real phases' run times: PC1 the longest, C1 the shortest. */
export const SEALING_ROUNDS_FACTOR: Readonly<Record<string, number>> = { ap: 0.5, pc1: 3, pc2: 1, c1: 0.25, c2: 1.5, finalize: 0.5 };

/** What a sealer of the devstack declares: enough for every phase, a GPU for PC2 and C2 (one at a time). */
export const DEMO_SEALER_RESOURCES = ['--cores', '48', '--memory-mb', String(512 * GIB), '--gpus', '0'] as const;

/** Its slots per sealing queue: two PC1 at once, one of each other phase. */
export const DEMO_SEALER_QUEUES = ['seal.ap:1', 'seal.pc1:2', 'seal.pc2:1', 'seal.c1:1', 'seal.c2:1', 'seal.finalize:1'] as const;
