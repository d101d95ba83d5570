// The worker's state file: the ids the coordinator gave, kept across restarts
// so that a restarted worker says hello with its old id and keeps its record
// (and its reputation, keys and history) instead of becoming a new one.
//
// One JSON file, `{ "workers": { "<worker name>": "<worker id>" } }`: keyed
// by name, so the logical workers of one process (`gaffer worker` splits a
// queue with its own GPUs into `<name>/<queue>`) share it. Reads and writes are
// synchronous, so two workers of one process never interleave a
// read-modify-write; each write goes to a temp file beside it, then is renamed
// over it, so a crash leaves the old file or the new one, never half of one.
// One process per state file.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

interface StateFile {
  workers: Record<string, string>;
}

/** Longest worker id kept (the hello schema's bound). */
const ID_MAX_CHARS = 256;

const validId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= ID_MAX_CHARS && !/[\s\u0000-\u001f]/.test(v);

/** The file's contents; a missing file is empty. Throws (with the path) when it exists but is not a state file. */
function load(file: string): StateFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { workers: Object.create(null) as Record<string, string> };
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`the worker state file ${file} is not JSON; remove it or fix it`);
  }
  const workers = (value as { workers?: unknown } | null)?.workers;
  if (typeof workers !== 'object' || workers === null || Array.isArray(workers)) {
    throw new Error(`the worker state file ${file} has no "workers" object; remove it or fix it`);
  }
  // A prototype-free map, so that no worker name (`__proto__`) can reach a prototype.
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, id] of Object.entries(workers)) if (validId(id)) out[name] = id;
  return { workers: out };
}

function store(file: string, state: StateFile): void {
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** The id saved for this worker name, if any. */
export function savedWorkerId(file: string, name: string): string | undefined {
  return load(file).workers[name];
}

/** Saves (or, with undefined, forgets) the id of this worker name, keeping the others. */
export function saveWorkerId(file: string, name: string, id: string | undefined): void {
  const state = load(file);
  if (id === undefined) delete state.workers[name];
  else state.workers[name] = id;
  store(file, state);
}
