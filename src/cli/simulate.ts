// `gaffer simulate`: a scheduling scenario in virtual time, run under Gaffer's
// policy and the baselines (FIFO, Lotus-like) on the same workload and
// faults, measured against a lower bound on the makespan (docs/simulator.md).
// With --seeds, the median and worst of each policy over a range of seeds.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { formatReport, parseFarm, SCENARIOS, simulate, type Farm } from '../sim/index.ts';
import { readToml } from './config.ts';
import { formatSeedSweep, simulateSeeds } from '../sim/seeds.ts';
import { LIMITS } from '../types/limits.ts';

interface Flags {
  scenario?: string;
  config?: string;
  seed: number;
  seeds?: { first: number; last: number };
  size?: number;
  faults: boolean;
  stalls?: boolean;
  speculation?: boolean;
  json?: boolean;
}

const SEED_MAX = 2 ** 32 - 1;

const whole = (min: number, max: number) => (v: string): number => {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`takes a whole number from ${min} to ${max}`);
  }
  return n;
};

const seedRange = (v: string): { first: number; last: number } => {
  const m = /^\s*(\d+)(?:\s*-\s*(\d+))?\s*$/.exec(v);
  const first = Number(m?.[1]);
  const last = m?.[2] === undefined ? first : Number(m[2]);
  if (m === null || !(first <= last && last <= SEED_MAX && last - first < LIMITS.simulateSeedsMax)) {
    throw new InvalidArgumentError(`takes a range FIRST-LAST of seeds from 0 to ${SEED_MAX}, at most ${LIMITS.simulateSeedsMax} of them`);
  }
  return { first, last };
};

export function registerSimulate(program: Command): void {
  const scenarios = Object.entries(SCENARIOS)
    .map(([name, s]) => `  ${name.padEnd(14)} ${s.summary} (--size: ${s.unit}, default ${s.defaultSize})`)
    .join('\n');
  program
    .command('simulate')
    .description("run a scheduling scenario in virtual time under Gaffer's policy and the FIFO and Lotus-like baselines, against a lower bound on the makespan")
    .addOption(new Option('--scenario <name>', 'the scenario to run').choices(Object.keys(SCENARIOS)).conflicts('config'))
    .option('--config <farm.toml>', 'run your own farm, described in a TOML file (docs/simulator.md, "Your own farm"), instead of a scenario')
    .option('--seed <n>', 'seed of the workload, the worker speeds and the faults: the same seed gives the same figures', whole(0, SEED_MAX), 1)
    .option('--seeds <first-last>', 'run every seed of the range and print the median and worst of each policy (a Markdown table)', seedRange)
    .option('--size <n>', "the scenario's size (default per scenario)", whole(1, 10_000))
    .option('--no-faults', 'inject no faults (stalls, departures)')
    .option('--stalls', 'prover-burst: two more workers hang for a while, heartbeating while their attempts stand still')
    .option('--speculation', "run the coordinator's speculative backups (off by default, so that the figures compare placement alone)")
    .option('--json', 'print the whole report as JSON')
    .addHelpText('after', `\nScenarios:\n${scenarios}\n`)
    .action(async (flags: Flags) => {
      if (flags.scenario === undefined && flags.config === undefined) program.error('error: give --scenario NAME or --config FARM.toml');
      const farm: Farm | undefined = flags.config !== undefined ? parseFarm(readToml(flags.config)) : undefined;
      if (farm !== undefined && flags.size !== undefined) program.error('error: --size applies to a scenario; a farm file gives its arrival.count');
      if (flags.stalls === true && flags.scenario !== 'prover-burst') program.error('error: --stalls applies to --scenario prover-burst');
      const which = {
        scenario: flags.scenario ?? 'farm',
        ...(farm !== undefined ? { farm } : {}),
        ...(flags.stalls === true ? { stalls: true } : {}),
        ...(flags.speculation === true ? { speculation: true } : {}),
      };
      const size = flags.size !== undefined ? { size: flags.size } : {};
      if (flags.seeds !== undefined) {
        const sweep = await simulateSeeds({ ...which, firstSeed: flags.seeds.first, lastSeed: flags.seeds.last, faults: flags.faults, ...size });
        console.log(flags.json ? JSON.stringify(sweep, null, 2) : formatSeedSweep(sweep));
        return;
      }
      const report = await simulate({
        ...which,
        seed: flags.seed,
        faults: flags.faults,
        ...(flags.size !== undefined ? { size: flags.size } : {}),
      });
      console.log(flags.json ? JSON.stringify(report, null, 2) : formatReport(report));
    });
}
