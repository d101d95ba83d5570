// How `gaffer serve`, `gaffer worker` and `gaffer devstack` write their logs.
// On a terminal a person reads them: one short line per event, the time, a
// level word only when it is not plain information, the message, and the
// fields that say which worker or job. Anywhere else (a
// file, a pipe, a service manager) the logs are pino's JSON lines, one per
// event, for machines. `--log-format` chooses either way explicitly.
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export type LogFormat = 'auto' | 'pretty' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'pretty', 'json'];

/** Fields every line carries in JSON that a person does not need to see. */
const HIDDEN_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component']);
/** A field's value longer than this is cut, so one event stays one line. */
export const PRETTY_FIELD_MAX_CHARS = 120;
const LEVEL_WORDS: Record<number, string> = { 10: 'trace', 20: 'debug', 40: 'warn', 50: 'error', 60: 'fatal' };

export function parseLogFormat(text: string | undefined): LogFormat {
  const f = (text ?? 'auto') as LogFormat;
  if (!LOG_FORMATS.includes(f)) throw new Error(`--log-format must be one of ${LOG_FORMATS.join(', ')}, not ${text}`);
  return f;
}

/** Whether a logger of this format on this stream writes human lines. */
export function isPretty(format: LogFormat, stream: { isTTY?: boolean } = process.stdout): boolean {
  return format === 'pretty' || (format === 'auto' && stream.isTTY === true);
}

export function createLogger(level: string, format: LogFormat, stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): Logger {
  if (!isPretty(format, stream)) return pino({ level }, stream);
  return pino({ level }, prettyStream(stream));
}

function prettyStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.length > 0) out.write(`${prettyLine(line)}\n`);
      }
      done();
    },
  });
}

/** One pino JSON line as a person reads it: `13:42:57 warn worker lost  name=prover-a workerId=01M8…`. */
export function prettyLine(json: string): string {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof obj.time === 'number' ? new Date(obj.time).toISOString().slice(11, 19) : '';
  const word = LEVEL_WORDS[Number(obj.level)];
  const head = [time, word, String(obj.msg ?? '')].filter((s) => s !== undefined && s !== '').join(' ');
  const fields = Object.entries(obj)
    .filter(([k, v]) => !HIDDEN_FIELDS.has(k) && v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}=${fieldText(v)}`);
  return fields.length === 0 ? head : `${head}  ${fields.join(' ')}`;
}

function fieldText(v: unknown): string {
  if (typeof v === 'string') return cut(v.includes(' ') || v === '' ? JSON.stringify(v) : v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return cut(v.map((x) => fieldText(x)).join(','));
  if (typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string') {
    return JSON.stringify((v as { message: string }).message);
  }
  return cut(typeof v === 'object' ? JSON.stringify(v) : String(v));
}

function cut(s: string): string {
  return s.length > PRETTY_FIELD_MAX_CHARS ? `${s.slice(0, PRETTY_FIELD_MAX_CHARS - 1)}…` : s;
}
