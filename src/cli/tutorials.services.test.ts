// The tutorials that declare `<!-- test: services -->`: they need a server no
// npm package ships (RabbitMQ, say), so they run in `npm run test:services`
// and fail, never skip, when it is missing. The rest run in
// tutorials.solo.test.ts.
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runTutorial, tutorialFiles } from './tutorial-runner.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DOC_TIMEOUT_MS = 25 * 60_000;

describe('tutorials that need system services (real processes on 127.0.0.1)', () => {
  const docs = tutorialFiles(REPO).filter((f) => f.doc.services);
  if (docs.length === 0) it('no tutorial declares services yet', () => undefined);
  for (const { name, doc } of docs) {
    it(`${name}: every step does what the document says`, { timeout: DOC_TIMEOUT_MS }, async () => {
      await runTutorial(name, doc, { repo: REPO, log: (l) => console.log(l) });
    });
  }
});
