// Imports point down: a layer (a folder of src/) imports only from itself and
// the layers below it (docs/architecture.md). Tests may stand up real
// components of higher layers (a client test starts a real server), except in
// the store, whose suites every backend runs and which must not depend on
// anything above it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Lowest first; layers of the same rank do not import each other. */
const LAYERS: Record<string, number> = {
  types: 0,
  trust: 1,
  scheduler: 2,
  store: 3,
  coordinator: 4,
  server: 5,
  client: 6,
  worker: 6,
  dashboard: 6,
  bridge: 7,
  sim: 7,
  cli: 8,
};

const SRC = fileURLToPath(new URL('.', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const layerOf = (path: string): string => relative(SRC, path).split(sep)[0]!;
const isTest = (path: string): boolean => /\.test\.ts$|[/\\]testing\.ts$|[/\\]fixtures[/\\]/.test(path);

/** The layers a file imports from, by its relative import paths. */
function importedLayers(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = join(path, '..', m[1]!);
    const rel = relative(SRC, target);
    if (rel.startsWith('..')) continue;
    out.push(rel.split(sep)[0]!);
  }
  return out;
}

describe('layers', () => {
  const files = sourceFiles(SRC).filter((f) => layerOf(f) in LAYERS);

  it('every folder of src/ is a known layer', () => {
    const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
    assert.deepEqual(folders.filter((f) => !(f in LAYERS)), []);
  });

  it('imports point down', () => {
    const upward: string[] = [];
    for (const file of files) {
      const own = layerOf(file);
      if (isTest(file) && own !== 'store') continue;
      for (const target of importedLayers(file)) {
        if (target === own) continue;
        const rank = LAYERS[target];
        if (rank === undefined || rank >= LAYERS[own]!) upward.push(`${relative(SRC, file)} imports ${target}`);
      }
    }
    assert.deepEqual(upward, []);
  });
});
