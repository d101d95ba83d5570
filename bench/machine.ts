// What both benchmark reports say about the machine and the sources: the CPU
// model, the operating system, and Gaffer's version and commit.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { fileURLToPath } from 'node:url';

/** The CPU's model name: /proc/cpuinfo on Linux, else what Node reports. */
export function cpuModel(): string {
  try {
    const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim();
    if (model) return model.replace(/\s+/g, ' ');
  } catch {
    // not Linux
  }
  return cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown';
}

/** The distribution's name with the kernel release and architecture. */
export function osName(): string {
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
    if (pretty) return `${pretty}, Linux ${release()} ${process.arch}`;
  } catch {
    // not Linux, or no os-release
  }
  return `${process.platform} ${release()} ${process.arch}`;
}

/** The package version and commit of the sources, and whether src/ differs from the commit. */
export function gafferVersion(): string {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const version = (JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as { version: string }).version;
  const head = spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  if (head.status !== 0) return version;
  const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no', '--', 'src'], { encoding: 'utf8' });
  return `${version}, commit ${head.stdout.trim()}${dirty.stdout.trim() !== '' ? ' with uncommitted changes in src/' : ''}`;
}
