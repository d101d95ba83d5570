// The machine a scale run ran on, for the report.
import { availableParallelism, hostname, loadavg, totalmem } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { cpuModel, gafferVersion, osName } from '../machine.ts';
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

function sqliteVersion(): string {
  const db = new DatabaseSync(':memory:');
  try {
    return String((db.prepare('SELECT sqlite_version() AS v').get() as { v: unknown }).v);
  } finally {
    db.close();
  }
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
