// A prover for `gaffer worker --exec`: reads n (the job's payload, JSON) on
// stdin and prints fib(n) as JSON on stdout. Anything but a whole number from
// 0 to 78 (above, fib(n) passes what a JSON number holds exactly) is refused
// with exit code 65: a permanent failure, not retried. FIB_DELAY_MS makes each
// proof take that long (to watch jobs in flight).
let input = '';
for await (const chunk of process.stdin) input += chunk;
const n = JSON.parse(input);
if (!Number.isInteger(n) || n < 0 || n > 78) {
  console.error(`fib: ${JSON.stringify(n)} is not a whole number from 0 to 78`);
  process.exit(65);
}
const delay = Number(process.env.FIB_DELAY_MS ?? 0);
if (delay > 0) await new Promise((r) => setTimeout(r, delay));
let [a, b] = [0, 1];
for (let i = 0; i < n; i++) [a, b] = [b, a + b];
console.log(JSON.stringify(a));
