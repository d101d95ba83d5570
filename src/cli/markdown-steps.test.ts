// The tutorial parser: which blocks are steps, what each annotation means, and
// the mistakes it refuses (an unknown annotation, one that names no block, a
// ```ts block neither written nor skipped).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTutorial, substitutePorts, withPorts } from './markdown-steps.ts';

const fence = '```';

describe('parseTutorial', () => {
  it('turns shell blocks into steps, with the annotations above each, and leaves samples alone', () => {
    const doc = parseTutorial(
      [
        '# Title',
        '<!-- test: ports 7070 5433 -->',
        '<!-- test: background -->',
        '<!-- test: expect /listening on/ within 90s -->',
        `${fence}sh`,
        './bin/gaffer serve --port 7070',
        fence,
        'It prints:',
        `${fence}text`,
        'gaffer: listening on http://127.0.0.1:7070',
        fence,
        '<!-- test: until /^succeeded$/im within 60s -->',
        `${fence}bash`,
        './bin/gaffer job $ID',
        fence,
        '<!-- test: status 1 -->',
        '<!-- test: expect /NETWORK/ -->',
        `${fence}sh`,
        './bin/gaffer workers --url http://127.0.0.1:1',
        fence,
        '<!-- test: skip: installs packages -->',
        `${fence}sh`,
        'npm install',
        fence,
      ].join('\n'),
    );
    assert.deepEqual(doc.ports, [7070, 5433]);
    assert.equal(doc.services, false);
    assert.equal(doc.steps.length, 4);
    const [serve, until, status, skip] = doc.steps;
    assert.equal(serve!.line, 5);
    assert.equal(serve!.code, './bin/gaffer serve --port 7070\n');
    assert.equal(serve!.background, true);
    assert.equal(serve!.withinMs, 90_000);
    assert.ok(serve!.expect[0]!.test('x\ngaffer: listening on y'));
    assert.equal(until!.background, false);
    assert.equal(until!.withinMs, 60_000);
    assert.ok(until!.until!.test('state\nSUCCEEDED\n'), 'flags i and m');
    assert.equal(status!.status, 1);
    assert.equal(status!.expect.length, 1);
    assert.equal(skip!.skip, 'installs packages');
  });

  it('writes code blocks to the file named, and knows the document switches', () => {
    const doc = parseTutorial(['<!-- test: services -->', '<!-- test: unprivileged -->', '<!-- test: file .gaffer/a.ts -->', `${fence}ts`, "console.log('a');", fence].join('\n'));
    assert.equal(doc.services, true);
    assert.equal(doc.unprivileged, true);
    assert.deepEqual(doc.ports, [7070]);
    assert.equal(doc.steps[0]!.file, '.gaffer/a.ts');
    assert.equal(doc.steps[0]!.code, "console.log('a');\n");
  });

  it('keeps a fence inside a longer fence as text', () => {
    const doc = parseTutorial([`${fence}\`sh`, 'echo a', fence, 'echo b', `${fence}\``].join('\n'));
    assert.equal(doc.steps.length, 1);
    assert.equal(doc.steps[0]!.code, `echo a\n${fence}\necho b\n`);
  });

  it('refuses what would silently test nothing', () => {
    assert.throws(() => parseTutorial('<!-- test: expct /x/ -->\n```sh\nls\n```', 'a.md'), /a\.md:1: unknown test annotation "expct \/x\/"/);
    assert.throws(() => parseTutorial('```sh\nls\n```\n<!-- test: expect /x/ -->\n', 'a.md'), /a\.md:4: test annotations with no block after them/);
    assert.throws(() => parseTutorial('<!-- test: expect /x/ -->\n```text\nx\n```', 'a.md'), /a\.md:1: test annotations before a ```text block/);
    assert.throws(() => parseTutorial('```ts\nlet a = 1;\n```', 'a.md'), /a\.md:1: a ```ts block needs/);
    assert.throws(() => parseTutorial('<!-- test: until /x/ -->\n```sh\nls\n```', 'a.md'), /unknown test annotation/, 'until needs a bound');
    assert.throws(() => parseTutorial('<!-- test: expect /(/ -->\n```sh\nls\n```', 'a.md'), /bad regex/);
    assert.throws(() => parseTutorial('```sh\nls\n', 'a.md'), /not closed/);
  });
});

describe('ports', () => {
  it('replaces whole port numbers only, in code, paths and regexes', () => {
    const ports = new Map([[7070, 41234], [5433, 40001]]);
    assert.equal(substitutePorts('--port 7070 http://127.0.0.1:7070/x :5433 17070 70701 1.7070', ports), '--port 41234 http://127.0.0.1:41234/x :40001 17070 70701 1.7070');
    const [step] = parseTutorial('<!-- test: expect /127\\.0\\.0\\.1:7070/ -->\n<!-- test: file at-7070.ts -->\n```ts\nurl(7070)\n```').steps;
    const moved = withPorts(step!, ports);
    assert.equal(moved.code, 'url(41234)\n');
    assert.equal(moved.file, 'at-41234.ts');
    assert.ok(moved.expect[0]!.test('http://127.0.0.1:41234'));
  });
});
