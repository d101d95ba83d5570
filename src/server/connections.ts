// Connections of the HTTP server, below fastify: the timeouts that bound a
// slow client, the answers to what never becomes a request (headers too large,
// a request that arrives too slowly, bytes that are not HTTP), and how a
// connection is closed when its answer went out before its body was read.
//
// Such a connection is closed gracefully: the answer goes out with
// `Connection: close`, the server ends its side, and the rest of the body
// still arriving is read and dropped for at most closeLingerMs before the
// socket is destroyed. Destroying it at once, with the client still sending,
// makes the kernel answer with a reset, and the client may never read the
// answer (a 413 would reach it as ECONNRESET).
import { STATUS_CODES, type IncomingMessage, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import { GafferError } from '../types/errors.ts';
import { HTTP_DEFAULTS, LIMITS } from '../types/limits.ts';

export interface HttpTimeouts {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  connectionIdleTimeoutMs: number;
  timeoutCheckIntervalMs: number;
  closeLingerMs: number;
}

/** HTTP_DEFAULTS, with what the caller gives (tests shorten them). */
export function httpTimeouts(over: Partial<HttpTimeouts> = {}): HttpTimeouts {
  const defined = Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) as Partial<HttpTimeouts>;
  const t: HttpTimeouts = {
    headersTimeoutMs: HTTP_DEFAULTS.headersTimeoutMs,
    requestTimeoutMs: HTTP_DEFAULTS.requestTimeoutMs,
    connectionIdleTimeoutMs: HTTP_DEFAULTS.connectionIdleTimeoutMs,
    timeoutCheckIntervalMs: HTTP_DEFAULTS.timeoutCheckIntervalMs,
    closeLingerMs: HTTP_DEFAULTS.closeLingerMs,
    ...defined,
  };
  if (t.headersTimeoutMs > t.requestTimeoutMs) throw new GafferError('INVALID_INPUT', 'headersTimeoutMs cannot be longer than requestTimeoutMs');
  return t;
}

/** Options for node's HTTP server: header size and the header and request timeouts. */
export function serverOptions(t: HttpTimeouts): ServerOptions {
  return {
    maxHeaderSize: LIMITS.httpHeadersMaxBytes,
    headersTimeout: t.headersTimeoutMs,
    requestTimeout: t.requestTimeoutMs,
    connectionsCheckingInterval: t.timeoutCheckIntervalMs,
  };
}

/** True while a request's body is still (or may still be) arriving: an answer now must close the connection. */
export function bodyUnread(req: IncomingMessage): boolean {
  return !req.complete && (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined);
}

/**
 * Makes the server's own close of this socket (after an answer with
 * `Connection: close`) a graceful one: end our side, keep reading and
 * dropping, destroy after lingerMs unless the client closed first.
 */
export function lingerOnClose(req: IncomingMessage, lingerMs: number): void {
  const socket = req.socket;
  socket.destroySoon = () => lingeringClose(socket, lingerMs);
  // The body is dropped as it arrives (a paused request would stop the socket being read, and the client sending).
  req.resume();
}

function lingeringClose(socket: Socket, lingerMs: number, answer?: string): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  // Whatever still arrives is dropped; what the parser still consumes, it drops itself.
  socket.on('data', () => undefined);
  socket.on('error', () => undefined);
  socket.resume();
  if (answer !== undefined) socket.end(answer);
  else socket.end();
}

/** What an error node reports for a connection (before any request exists) is, in the catalogue. */
function clientErrorOf(err: NodeJS.ErrnoException, t: HttpTimeouts): GafferError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new GafferError('HEADERS_TOO_LARGE', `the request line and headers are larger than ${LIMITS.httpHeadersMaxBytes} bytes`, {
        maxBytes: LIMITS.httpHeadersMaxBytes,
      });
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new GafferError('REQUEST_TIMEOUT', `the request did not arrive in time: headers within ${t.headersTimeoutMs} ms, all of it within ${t.requestTimeoutMs} ms`, {
        headersTimeoutMs: t.headersTimeoutMs,
        requestTimeoutMs: t.requestTimeoutMs,
      });
    default:
      return new GafferError('INVALID_INPUT', 'the request is not valid HTTP/1.1');
  }
}

/**
 * The server's 'clientError' handler: an answer in the one error shape,
 * written straight to the socket (there is no request), then a graceful close.
 */
export function clientErrorHandler(t: HttpTimeouts) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const e = clientErrorOf(err, t);
    const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    // An answer already under way on this socket cannot be followed by another.
    if (!socket.writable || current?.headersSent) {
      lingeringClose(socket, t.closeLingerMs);
      return;
    }
    const body = JSON.stringify({ error: e.toJSON() });
    const head = [
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}`,
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Connection: close',
    ];
    lingeringClose(socket, t.closeLingerMs, `${head.join('\r\n')}\r\n\r\n${body}`);
  };
}
