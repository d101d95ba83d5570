// The machine a scale run ran on, for the report.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { fileLimit } from './proc.ts';

export interface Machine {
  host: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  sqlite: string;
  postgres: string | null;
  /** Open-file limits of the bench process (the coordinator it starts inherits them). */
  openFilesSoft: number;
  openFilesHard: number;
  gaffer: string;
  loadAverage1m: number;
}

function cpuModel(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim();
    if (model) return model.replace(/\s+/g, ' ');
  } catch {
    // not Linux
  }
  return cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown';
}

function osName(): string {
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
    if (pretty) return `${pretty}, Linux ${release()} ${process.arch}`;
  } catch {
    // no os-release
  }
  return `${process.platform} ${release()} ${process.arch}`;
}

function sqliteVersion(): string {
  const db = new DatabaseSync(':memory:');
  try {
    return String((db.prepare('SELECT sqlite_version() AS v').get() as { v: unknown }).v);
  } finally {
    db.close();
  }
}

/** The package version and commit of the sources, and whether src/ differs from the commit. */
export function gafferVersion(): string {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const version = (JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as { version: string }).version;
  const head = spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  if (head.status !== 0) return version;
  const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no', '--', 'src'], { encoding: 'utf8' });
  return `${version}, commit ${head.stdout.trim()}${dirty.stdout.trim() !== '' ? ' with uncommitted changes in src/' : ''}`;
}

export function describeMachine(postgres: string | null): Machine {
  const files = fileLimit('self');
  return {
    host: hostname(),
    cpu: cpuModel(),
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: osName(),
    node: process.version,
    sqlite: sqliteVersion(),
    postgres,
    openFilesSoft: files.soft,
    openFilesHard: files.hard,
    gaffer: gafferVersion(),
    loadAverage1m: loadavg()[0] ?? NaN,
  };
}
