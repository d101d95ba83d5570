// `gaffer pipeline submit NAME`, `show ID`, `list` and `templates`: pipeline
// instances over the HTTP API (docs/pipelines.md).
import { InvalidArgumentError, type Command } from 'commander';
import { PIPELINE_STATES, type Pipeline, type PipelineDetail, type PipelineSpec, type PipelineState } from '../types/pipeline.ts';
import { clientFrom } from './common.ts';
import { parsePayload, withCommon } from './client-commands.ts';

interface Common {
  url?: string;
  token?: string;
  json?: boolean;
}

/** How often `submit --wait` reads the instance again. */
const WAIT_POLL_MS = 1000;

const time = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());

function pipelineLine(p: Pipeline): string {
  return `${p.id}  ${p.template.padEnd(16)} ${p.state.padEnd(10)} ${time(p.createdAt)}  ${p.key ?? ''}`.trimEnd();
}

/** The instance, then a line per phase: its state and its jobs' states. */
export function pipelineDetail(p: PipelineDetail): string {
  const lines = [
    `id         ${p.id}`,
    `template   ${p.template}`,
    `state      ${p.state}`,
    `key        ${p.key ?? '-'}`,
    `locality   ${p.locality}`,
    `onFailure  ${p.onFailure}`,
    `created    ${time(p.createdAt)}`,
    `finished   ${time(p.finishedAt)}`,
  ];
  if (p.error) lines.push(`error      ${p.error.code}: ${p.error.message}`);
  lines.push('phases:');
  const width = Math.max(5, ...p.phases.map((ph) => ph.name.length));
  for (const ph of p.phases) {
    const jobs = ph.jobs.map((j) => (ph.jobs.length === 1 ? `${j.id} ${j.state}` : `#${j.index} ${j.state}`)).join(', ');
    lines.push(`  ${ph.name.padEnd(width)}  ${ph.queue.padEnd(16)} ${ph.state.padEnd(10)} ${jobs}`);
  }
  return lines.join('\n');
}

const stateOf = (v: string): PipelineState => {
  if (!(PIPELINE_STATES as readonly string[]).includes(v)) throw new InvalidArgumentError(`takes one of ${PIPELINE_STATES.join(', ')}`);
  return v as PipelineState;
};

const positive = (v: string): number => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1) throw new InvalidArgumentError('takes a whole number of at least 1');
  return n;
};

export function registerPipelineCommands(program: Command): void {
  const pipeline = program.command('pipeline').description('pipeline instances: submit one from a template, show one, list them');
  withCommon(pipeline.command('submit <template>'))
    .description('make one instance of a template named in the config: all its jobs, with their dependencies, at once')
    .option('--payload <json>', 'the JSON every job of the instance gets, or @file to read it from a file')
    .option('--key <key>', 'idempotency key: submitting it again answers the same instance and makes no new jobs')
    .option('--locality <key>', 'the locality key its affinity = "parent" phases run by (where the data is); default the instance id')
    .option('--wait', 'wait until the instance ends, showing its phases; exit 1 unless it succeeded')
    .action(async (template: string, opts: Common & { payload?: string; key?: string; locality?: string; wait?: boolean }) => {
      const client = clientFrom(opts);
      const spec: PipelineSpec = {
        template,
        payload: parsePayload(opts.payload),
        ...(opts.key !== undefined ? { key: opts.key } : {}),
        ...(opts.locality !== undefined ? { locality: opts.locality } : {}),
      };
      const { pipeline: p, created } = await client.submitPipeline(spec);
      if (!opts.wait) {
        console.log(opts.json ? JSON.stringify({ created, pipeline: p }, null, 2) : `${created ? 'created' : 'exists'} ${p.id}\n${pipelineDetail(p)}`);
        return;
      }
      let current = p;
      if (!opts.json) console.log(`${created ? 'created' : 'exists'} ${p.id}`);
      while (current.state === 'running') {
        await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
        current = await client.pipeline(p.id);
        if (!opts.json) console.log(`  ${current.phases.map((ph) => `${ph.name} ${ph.state}`).join(' · ')}`);
      }
      console.log(opts.json ? JSON.stringify(current, null, 2) : pipelineDetail(current));
      if (current.state !== 'succeeded') process.exitCode = 1;
    });
  withCommon(pipeline.command('show <id>'))
    .description("an instance's state and each phase's state and jobs")
    .action(async (id: string, opts: Common) => {
      const p = await clientFrom(opts).pipeline(id);
      console.log(opts.json ? JSON.stringify(p, null, 2) : pipelineDetail(p));
    });
  withCommon(pipeline.command('list'))
    .description('instances, newest first')
    .option('--template <name>', 'only instances of this template')
    .option('--state <state>', `only instances in this state: ${PIPELINE_STATES.join(', ')}`, stateOf)
    .option('--limit <n>', 'instances per page', positive)
    .option('--cursor <cursor>', 'the next page, from a previous listing')
    .action(async (opts: Common & { template?: string; state?: PipelineState; limit?: number; cursor?: string }) => {
      const page = await clientFrom(opts).pipelines({ template: opts.template, state: opts.state, limit: opts.limit, cursor: opts.cursor });
      if (opts.json) return console.log(JSON.stringify(page, null, 2));
      console.log(page.pipelines.length === 0 ? 'no pipeline instances' : page.pipelines.map(pipelineLine).join('\n'));
      if (page.nextCursor) console.log(`more: --cursor ${page.nextCursor}`);
    });
  withCommon(pipeline.command('templates'))
    .description('the templates the coordinator\'s config names')
    .action(async (opts: Common) => {
      const templates = await clientFrom(opts).pipelineTemplates();
      if (opts.json) return console.log(JSON.stringify(templates, null, 2));
      const names = Object.keys(templates).sort();
      if (names.length === 0) return console.log('no pipeline templates: the config names none ([pipelines.NAME])');
      for (const name of names) {
        const t = templates[name]!;
        console.log(`${name} (onFailure ${t.onFailure ?? 'fail'}): ${t.phases.map((ph) => `${ph.name}${(ph.count ?? 1) > 1 ? `x${ph.count}` : ''}`).join(' -> ')}`);
      }
    });
}
