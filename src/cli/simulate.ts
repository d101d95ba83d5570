// `gaffer simulate`: a scheduling scenario in virtual time, run under Gaffer's
// policy and a FIFO baseline on the same workload and faults, measured
// against a lower bound on the makespan (docs/simulator.md).
import { InvalidArgumentError, Option, type Command } from 'commander';
import { formatReport, SCENARIOS, simulate } from '../sim/index.ts';

interface Flags {
  scenario: string;
  seed: number;
  size?: number;
  faults: boolean;
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

export function registerSimulate(program: Command): void {
  const scenarios = Object.entries(SCENARIOS)
    .map(([name, s]) => `  ${name.padEnd(14)} ${s.summary} (--size: ${s.unit}, default ${s.defaultSize})`)
    .join('\n');
  program
    .command('simulate')
    .description("run a scheduling scenario in virtual time under Gaffer's policy and a FIFO baseline, against a lower bound on the makespan")
    .addOption(new Option('--scenario <name>', 'the scenario to run').choices(Object.keys(SCENARIOS)).makeOptionMandatory())
    .option('--seed <n>', 'seed of the workload, the worker speeds and the faults: the same seed gives the same figures', whole(0, SEED_MAX), 1)
    .option('--size <n>', "the scenario's size (default per scenario)", whole(1, 10_000))
    .option('--no-faults', 'inject no faults (stalls, departures)')
    .option('--json', 'print the whole report as JSON')
    .addHelpText('after', `\nScenarios:\n${scenarios}\n`)
    .action(async (flags: Flags) => {
      const report = await simulate({
        scenario: flags.scenario,
        seed: flags.seed,
        faults: flags.faults,
        ...(flags.size !== undefined ? { size: flags.size } : {}),
      });
      console.log(flags.json ? JSON.stringify(report, null, 2) : formatReport(report));
    });
}
