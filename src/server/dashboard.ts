// The dashboard: static files served at `/` on the API's port. The browser
// code is compiled once at install (`npm install` runs `prepare`, which writes
// build/dashboard/); this file only serves what is there. Only the files found
// in that folder when the app is built can be asked for, by exact name, so no
// path can reach outside it.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const DASHBOARD_DIR = fileURLToPath(new URL('../../build/dashboard/', import.meta.url));
/** Where the files are: /dashboard/<name>; the page itself is `/`. */
export const DASHBOARD_PREFIX = '/dashboard/';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
};

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** Every servable file under `dir`, by its path relative to it with forward slashes. */
function loadFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const type = CONTENT_TYPES[extname(name)];
        if (!type) continue;
        const body = readFileSync(path);
        const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
        files.set(relative(dir, path).split(sep).join('/'), { body, type, etag });
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return files;
}

function send(req: FastifyRequest, reply: FastifyReply, file: StaticFile): FastifyReply {
  // no-cache: the browser keeps a copy but asks each time; the ETag makes the answer a 304 when nothing changed.
  reply.headers({ ...SECURITY_HEADERS, 'cache-control': 'no-cache', etag: file.etag });
  if (req.headers['if-none-match'] === file.etag) return reply.code(304).send();
  return reply.type(file.type).send(file.body);
}

const MISSING_PAGE =
  '<!doctype html><meta charset="utf-8"><title>Gaffer</title><p>The dashboard is not built: run <code>npm install</code> ' +
  '(its <code>prepare</code> script writes build/dashboard/) and restart the coordinator. The API is under <code>/v1</code>.</p>';

/** Adds GET / (the page) and GET /dashboard/* (its files) to the app. */
export function registerDashboard(app: FastifyInstance, dir: string = DASHBOARD_DIR): void {
  const files = loadFiles(dir);
  const index = files.get('index.html');
  app.get('/', async (req, reply) => {
    if (index) return send(req, reply, index);
    return reply.code(503).headers(SECURITY_HEADERS).type('text/html; charset=utf-8').send(MISSING_PAGE);
  });
  app.get(`${DASHBOARD_PREFIX}*`, async (req, reply) => {
    const name = (req.params as { '*': string })['*'];
    const file = files.get(name);
    if (!file) return reply.callNotFound();
    return send(req, reply, file);
  });
}
