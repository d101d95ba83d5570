// The RPC client of docs/tutorials/rabbitmq-rpc.md on Gaffer's SDK: no broker,
// no reply queue, no correlation id; request() submits a job and resolves to
// its result (or rejects with its error), like a function call. Outside this
// repository, import { GafferClient } from 'gaffer/client'.
import { GafferClient, GafferClientError } from '../../src/client/client.ts';

const client = new GafferClient({ url: process.env.GAFFER_URL ?? 'http://127.0.0.1:7070' });
const num = parseInt(process.argv[2] ?? '', 10);

console.log(' [x] Requesting fib(%d)', num);
try {
  const result = await client.request<number>('fib', num);
  console.log(' [.] Got %s', result);
} catch (err) {
  if (!(err instanceof GafferClientError)) throw err;
  console.log(' [.] Failed: %s %s', err.code, err.message);
  process.exitCode = 1;
}
