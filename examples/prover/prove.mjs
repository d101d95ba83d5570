// A stand-in prover for the tutorial: reads a job's payload as JSON on stdin,
// "proves" by hashing the input `rounds` times, reports progress on fd 3, and
// prints the result as JSON on stdout. Any program that does the same can be a
// Gaffer worker, in any language.
import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';

let text = '';
for await (const chunk of process.stdin) text += chunk;
const { input = '', rounds = 2_000_000 } = JSON.parse(text || '{}');

const progressFd = Number(process.env.GAFFER_PROGRESS_FD);
const step = Math.max(1, Math.floor(rounds / 10));
let digest = createHash('sha256').update(String(input)).digest();
for (let i = 1; i <= rounds; i++) {
  digest = createHash('sha256').update(digest).digest();
  if (i % step === 0 && progressFd) writeSync(progressFd, JSON.stringify({ done: i / rounds }) + '\n');
}
process.stdout.write(JSON.stringify({ input, proof: digest.toString('hex'), attempt: process.env.GAFFER_ATTEMPT_ID }));
