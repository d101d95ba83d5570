// The steps of a tutorial, read from its Markdown: every fenced ```sh block is
// a step, run in order in one bash session (tutorial-runner.ts), so the
// documents and their tests cannot drift apart. Invisible HTML comments tell
// the test what to do with a block and what to expect of it:
//
//   <!-- test: background -->            run the next block in the background, as in another
//                                        terminal; it is stopped when the document ends
//   <!-- test: expect /REGEX/ -->        its stdout+stderr must match (flags may follow: /x/i);
//                                        for a background block: within the bound
//   <!-- test: until /REGEX/ within 60s --> run it again (1 s apart) until its output matches
//                                        (the whole block: keep it free of side effects)
//   <!-- test: within 300s -->           the bound of the block (default 180 s; background 120 s)
//   <!-- test: status N -->              its last command exits N (default: every command exits 0)
//   <!-- test: file PATH -->             a code block (```ts) is written to PATH, for a later step to run
//   <!-- test: skip: REASON -->          not run (only where running is impossible, e.g. npm install)
//
// An annotation is a line of its own and applies to the next fenced block; a
// block may have several. A ```ts (or js) block needs `file` or `skip`; blocks of other
// languages (text, toml, console) are samples and are not run. Anywhere in the
// document:
//
//   <!-- test: ports 7070 7071 -->       the ports it names: each becomes a free port in every
//                                        block, regex and path (default: 7070)
//   <!-- test: services -->              needs a server no npm package ships: run only by
//                                        `npm run test:services` (tutorials.services.test.ts)
//   <!-- test: unprivileged -->          when the test runs as root, also run it as `nobody`

export interface Step {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  background: boolean;
  expect: RegExp[];
  until: RegExp | null;
  withinMs: number | null;
  status: number | null;
  skip: string | null;
  file: string | null;
}

export interface TutorialDoc {
  steps: Step[];
  ports: number[];
  services: boolean;
  unprivileged: boolean;
}

export const STEP_DEFAULTS = {
  foregroundMs: 180_000,
  backgroundMs: 120_000,
  /** Between two runs of an `until` block. */
  retryIntervalMs: 1_000,
} as const;

const SHELL = new Set(['sh', 'bash', 'shell']);
const CODE = new Set(['ts', 'typescript', 'js', 'mjs', 'javascript']);

type Pending = Omit<Step, 'line' | 'lang' | 'code'>;

const fresh = (): Pending => ({ background: false, expect: [], until: null, withinMs: null, status: null, skip: null, file: null });

function regexOf(body: string, flags: string, where: string): RegExp {
  try {
    return new RegExp(body, flags.includes('m') ? flags : `${flags}m`);
  } catch (err) {
    throw new Error(`${where}: bad regex /${body}/: ${(err as Error).message}`);
  }
}

/** Applies one annotation to the document or to the block that follows. */
function annotate(text: string, doc: TutorialDoc, next: Pending, where: string): boolean {
  let m: RegExpMatchArray | null;
  if (text === 'background') next.background = true;
  else if (text === 'services') doc.services = true;
  else if (text === 'unprivileged') doc.unprivileged = true;
  else if ((m = /^ports((?:\s+\d+)+)$/.exec(text))) {
    doc.ports = m[1]!.trim().split(/\s+/).map(Number);
    return false;
  } else if ((m = /^expect\s+\/(.*)\/([imsu]*)(?:\s+within\s+(\d+)s)?$/.exec(text))) {
    next.expect.push(regexOf(m[1]!, m[2]!, where));
    if (m[3]) next.withinMs = Number(m[3]) * 1000;
  } else if ((m = /^until\s+\/(.*)\/([imsu]*)\s+within\s+(\d+)s$/.exec(text))) {
    next.until = regexOf(m[1]!, m[2]!, where);
    next.withinMs = Number(m[3]) * 1000;
  } else if ((m = /^within\s+(\d+)s$/.exec(text))) next.withinMs = Number(m[1]) * 1000;
  else if ((m = /^status\s+(\d+)$/.exec(text))) next.status = Number(m[1]);
  else if ((m = /^skip:\s*(\S.*)$/.exec(text))) next.skip = m[1]!;
  else if ((m = /^file\s+(\S+)$/.exec(text))) next.file = m[1]!;
  else throw new Error(`${where}: unknown test annotation "${text}"`);
  return !['services', 'unprivileged'].includes(text);
}

/** The steps of a Markdown document, with its annotations; throws on an annotation it does not know or that names no block. */
export function parseTutorial(markdown: string, name = 'markdown'): TutorialDoc {
  const doc: TutorialDoc = { steps: [], ports: [7070], services: false, unprivileged: false };
  const lines = markdown.split('\n');
  let next = fresh();
  let pendingAt: number | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const c = /^\s*<!--\s*test:\s*(.*?)\s*-->\s*$/.exec(line);
    if (c && annotate(c[1]!, doc, next, `${name}:${i + 1}`)) pendingAt ??= i + 1;
    const fence = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(line);
    if (!fence) continue;
    const close = new RegExp(`^\\s*${fence[2]![0] === '`' ? '`' : '~'}{${fence[2]!.length},}\\s*$`);
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !close.test(lines[j]!)) body.push(lines[j++]!);
    if (j >= lines.length) throw new Error(`${name}:${i + 1}: a fenced block is not closed`);
    const lang = fence[3]!.toLowerCase();
    const step: Step = { line: i + 1, lang, code: `${body.join('\n')}\n`, ...next };
    if (SHELL.has(lang) || CODE.has(lang)) {
      if (CODE.has(lang) && step.file === null && step.skip === null) {
        throw new Error(`${name}:${i + 1}: a \`\`\`${lang} block needs <!-- test: file PATH --> or <!-- test: skip: REASON -->`);
      }
      if (step.until && step.background) throw new Error(`${name}:${i + 1}: a background block cannot be run until it matches`);
      doc.steps.push(step);
    } else if (pendingAt !== null) {
      throw new Error(`${name}:${pendingAt}: test annotations before a \`\`\`${lang || 'plain'} block, which is not run`);
    }
    next = fresh();
    pendingAt = null;
    i = j;
  }
  if (pendingAt !== null) throw new Error(`${name}:${pendingAt}: test annotations with no block after them`);
  return doc;
}

/** The text with each of `ports` (as a whole number) replaced by its counterpart. */
export function substitutePorts(text: string, ports: ReadonlyMap<number, number>): string {
  if (ports.size === 0) return text;
  const re = new RegExp(`(?<![\\d.])(${[...ports.keys()].join('|')})(?!\\d)`, 'g');
  return text.replace(re, (p) => String(ports.get(Number(p))));
}

/** A step with its ports replaced: code, file path and regexes. */
export function withPorts(step: Step, ports: ReadonlyMap<number, number>): Step {
  const re = (r: RegExp): RegExp => new RegExp(substitutePorts(r.source, ports), r.flags);
  return {
    ...step,
    code: substitutePorts(step.code, ports),
    file: step.file === null ? null : substitutePorts(step.file, ports),
    expect: step.expect.map(re),
    until: step.until === null ? null : re(step.until),
  };
}
