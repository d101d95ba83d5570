// The coordinator's network face: the HTTP API and the worker WebSocket on one
// port. Listening beyond loopback without a token is refused.
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Coordinator } from '../coordinator/coordinator.ts';
import { GafferError } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';
import { Auth, isLoopback } from './auth.ts';
import { buildHttpApp } from './http.ts';
import { attachWorkerSocket } from './worker-socket.ts';

export interface ServerOptions {
  coordinator: Coordinator;
  auth: Auth;
  host: string;
  /** 0 picks a free port. */
  port: number;
  logger?: Logger;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:7070 */
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Throws unless the server would listen on loopback, or with tokens of at
 * least LIMITS.tokenMinChars characters: callers check this before opening anything.
 */
export function assertSafeListen(auth: Auth, host: string): void {
  if (isLoopback(host)) return;
  if (!auth.enabled) {
    throw new GafferError(
      'INVALID_INPUT',
      `refusing to listen on ${host} without a token: anyone who can reach it could submit and run work. ` +
        'Pass --token (or set GAFFER_TOKEN, or configure tokens in the config file), or listen on 127.0.0.1.',
    );
  }
  if (auth.shortTokens.length > 0) {
    throw new GafferError(
      'INVALID_INPUT',
      `refusing to listen on ${host} with a token shorter than ${LIMITS.tokenMinChars} characters (${auth.shortTokens.join(', ')}): ` +
        'it could be guessed. Use a long random token (openssl rand -hex 32), or listen on 127.0.0.1.',
      { tokens: auth.shortTokens, minChars: LIMITS.tokenMinChars },
    );
  }
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  assertSafeListen(options.auth, options.host);
  const app = await buildHttpApp({ coordinator: options.coordinator, auth: options.auth, logger: options.logger ? httpLogger(options.logger) : false });
  if (options.logger) logRequests(app, options.logger);
  const sockets = attachWorkerSocket(app.server, {
    coordinator: options.coordinator,
    auth: options.auth,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  await app.listen({ host: options.host, port: options.port });
  const port = (app.server.address() as AddressInfo).port;
  const host = options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    port,
    async close() {
      await sockets.close();
      await app.close();
    },
  };
}

/**
 * Fastify's own request lines (two per request, at info) are dropped: the
 * HTTP layer logs only its warnings and errors on the operator's logger...
 */
function httpLogger(logger: Logger): Logger {
  return logger.child({}, { level: logger.isLevelEnabled('warn') ? 'warn' : logger.level });
}

/** ...and one line per request at debug: method, URL, status and time. */
function logRequests(app: FastifyInstance, logger: Logger): void {
  if (!logger.isLevelEnabled('debug')) return;
  app.addHook('onResponse', async (req, reply) => {
    logger.debug({ reqId: req.id, method: req.method, url: req.url, statusCode: reply.statusCode, responseTimeMs: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
  });
}
