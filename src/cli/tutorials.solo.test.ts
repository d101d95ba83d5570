// The README and every tutorial in docs/tutorials, run as a reader would run
// them: each ```sh block in order, in one bash session, on free ports of
// 127.0.0.1, checking what the annotations in the Markdown say each step
// promises (markdown-steps.ts says how to annotate, tutorial-runner.ts how they
// run). A document that declares `<!-- test: services -->` runs in
// tutorials.services.test.ts instead. A `.solo.test.ts` file: a tutorial
// starts coordinators, several workers and their children.
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runTutorial, tutorialFiles, unprivilegedUser } from './tutorial-runner.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** A whole document, all its steps and the stop at its end. */
const DOC_TIMEOUT_MS = 25 * 60_000;

describe('tutorials (real processes on 127.0.0.1)', () => {
  const nobody = unprivilegedUser();
  for (const { name, doc } of tutorialFiles(REPO).filter((f) => !f.doc.services)) {
    it(`${name}: every step does what the document says`, { timeout: DOC_TIMEOUT_MS }, async () => {
      await runTutorial(name, doc, { repo: REPO, log: (l) => console.log(l) });
    });
    if (doc.unprivileged && nobody) {
      it(`${name}, as nobody: every step does what the document says`, { timeout: DOC_TIMEOUT_MS }, async () => {
        await runTutorial(name, doc, { repo: REPO, as: nobody, log: (l) => console.log(l) });
      });
    }
  }
});
