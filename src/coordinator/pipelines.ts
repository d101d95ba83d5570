// Pipeline templates and submits, checked before any write: a template's
// phases (unique names, edges only to earlier phases, bounded fan-out and
// size), and an instance expanded from one into its jobs. docs/pipelines.md.
import { Ajv } from 'ajv';
import { GafferError } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';
import type { Json } from '../types/model.ts';
import type { NewPipeline, NewPipelineJob, PhaseTemplate, PipelineSpec, PipelineTemplate } from '../types/pipeline.ts';
import { pipelineSpecSchema, pipelineTemplateSchema } from '../types/pipeline-schemas.ts';
import { checkSize, jsonBytes, normalizeJob, schemaError, type JobDefaults } from './validate.ts';

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
const checkTemplateSchema = ajv.compile(pipelineTemplateSchema);
const checkSpecSchema = ajv.compile(pipelineSpecSchema);

/** A template with every default filled: each phase has its count and its `after`. */
export type PipelineDefinition = Required<PipelineTemplate> & { phases: (PhaseTemplate & { count: number; after: string[] })[] };

/**
 * Checks a template (from the config or a submit) and fills its defaults:
 * phase names are unique, each phase runs after earlier phases only (so the
 * phases' order is a topological order and there is no cycle), affinityMode
 * only with affinity, and an instance makes at most LIMITS.pipelineJobsMax jobs.
 */
export function checkTemplate(input: unknown, what: string): PipelineDefinition {
  if (!checkTemplateSchema(input)) throw schemaError(what, checkTemplateSchema.errors);
  const t = input as PipelineTemplate & { name?: string };
  const seen = new Set<string>();
  const phases = t.phases.map((ph, i) => {
    const at = `${what}.phases[${i}]`;
    if (seen.has(ph.name)) throw new GafferError('INVALID_INPUT', `${at}: another phase is named "${ph.name}" already`);
    const after = ph.after ?? [];
    const unknown = after.find((a) => !seen.has(a));
    if (unknown !== undefined) {
      throw new GafferError('INVALID_INPUT', `${at}.after names "${unknown}", which is not a phase listed before "${ph.name}" (phases are listed in the order they run)`);
    }
    if (ph.affinityMode !== undefined && ph.affinity === undefined) throw new GafferError('INVALID_INPUT', `${at}: affinityMode goes with affinity = "parent"`);
    seen.add(ph.name);
    return { ...ph, count: ph.count ?? 1, after };
  });
  const jobs = phases.reduce((n, ph) => n + ph.count, 0);
  if (jobs > LIMITS.pipelineJobsMax) {
    throw new GafferError('INVALID_INPUT', `${what} makes ${jobs} jobs an instance; the limit is ${LIMITS.pipelineJobsMax} (pipelineJobsMax)`);
  }
  return { phases, onFailure: t.onFailure ?? 'fail' };
}

/** The phase's fields as a job spec, the queue's defaults filling what it leaves out. */
function phaseJob(ph: PhaseTemplate, payload: Json, defaults: JobDefaults, what: string) {
  const spec: Record<string, unknown> = { queue: ph.queue, payload };
  for (const k of ['requires', 'maxAttempts', 'priority', 'timeoutMs', 'heartbeatTimeoutMs'] as const) if (ph[k] !== undefined) spec[k] = ph[k];
  return normalizeJob(spec, defaults, what);
}

/**
 * A submit (POST /v1/pipelines) expanded into its instance: per phase, `count`
 * jobs, each depending on every job of the phases it runs after. `templates`:
 * those the config names; an inline template is checked here.
 */
export function expandPipeline(input: unknown, templates: Readonly<Record<string, PipelineDefinition>>, defaultsFor: (queue: string) => JobDefaults): NewPipeline {
  if (!checkSpecSchema(input)) throw schemaError('pipeline', checkSpecSchema.errors);
  const spec = input as PipelineSpec;
  const { name, definition } = resolveTemplate(spec.template, templates);
  const payload = (spec.payload ?? null) as Json;
  checkSize(payload, LIMITS.payloadMaxBytes, 'pipeline.payload');
  const jobs: NewPipelineJob[] = [];
  const positions = new Map<string, number[]>();
  for (const ph of definition.phases) {
    // The payload is checked once above; each phase's job takes it after its own fields are checked.
    const base = { ...phaseJob(ph, null, defaultsFor(ph.queue), `pipeline phase ${ph.name}`), payload };
    const after = ph.after.flatMap((a) => positions.get(a)!);
    const mine: number[] = [];
    for (let index = 0; index < ph.count; index++) {
      mine.push(jobs.length);
      jobs.push({ phase: ph.name, index, spec: base, after, parentAffinity: ph.affinity === 'parent' ? (ph.affinityMode ?? 'prefer') : null });
    }
    positions.set(ph.name, mine);
  }
  const stored = jsonBytes(payload, 'pipeline.payload') * jobs.length;
  if (stored > LIMITS.pipelinePayloadsMaxBytes) {
    throw new GafferError('PAYLOAD_TOO_LARGE', `the payload, kept once per job (${jobs.length} jobs), is ${stored} bytes; the limit is ${LIMITS.pipelinePayloadsMaxBytes} (pipelinePayloadsMaxBytes)`, {
      bytes: stored,
      maxBytes: LIMITS.pipelinePayloadsMaxBytes,
    });
  }
  return { template: name, definition, payload, key: spec.key ?? null, locality: spec.locality ?? null, jobs };
}

function resolveTemplate(t: PipelineSpec['template'], templates: Readonly<Record<string, PipelineDefinition>>): { name: string; definition: PipelineDefinition } {
  if (typeof t !== 'string') return { name: t.name ?? 'inline', definition: checkTemplate(t, 'pipeline.template') };
  const definition = Object.hasOwn(templates, t) ? templates[t] : undefined;
  if (!definition) {
    const known = Object.keys(templates).sort();
    throw new GafferError('UNKNOWN_TEMPLATE', `no pipeline template is named "${t}"${known.length ? ` (the config names ${known.join(', ')})` : ' (the config names none)'}`, { template: t });
  }
  return { name: t, definition };
}
