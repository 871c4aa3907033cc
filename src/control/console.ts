// The web console's files, served by the control plane on the API port: `/` (index.html),
// `/console/*.js` (the compiled app in dist/web), `/console/styles.css` and uPlot. A fixed set
// of names and a resolved-path check (no traversal), a strict Content-Security-Policy on every
// response, no external resource. These routes are public: the data comes from the API, with
// the token the user pastes into the page.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface ConsoleOptions {
  /** The repository (or installed package) root: holds web/, dist/web/ and node_modules/uplot. */
  readonly root: string;
}

/** The package root, from this file's place in dist/src/control/. */
export function consoleRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Module names the app may ask for under /console/: lowercase words, one folder level. */
const APP_MODULE = /^(?:[a-z][a-z0-9-]{0,40}\/)?[a-z][a-z0-9-]{0,40}\.js$/;

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cross-origin-resource-policy', 'same-origin');
}

/** Where uPlot's files are: beside the package, or hoisted above it when installed. */
function uplotDir(root: string): string[] {
  const dirs = [path.join(root, 'node_modules', 'uplot', 'dist')];
  let up = path.dirname(root);
  for (let i = 0; i < 3; i++) {
    dirs.push(path.join(up, 'node_modules', 'uplot', 'dist'));
    up = path.dirname(up);
  }
  return dirs;
}

async function firstReadable(files: readonly string[]): Promise<Buffer | null> {
  for (const f of files) {
    try {
      return await readFile(f);
    } catch {
      /* try the next place */
    }
  }
  return null;
}

export function registerConsole(app: FastifyInstance, options: ConsoleOptions): void {
  const root = path.resolve(options.root);
  const distWeb = path.join(root, 'dist', 'web');
  const webDir = path.join(root, 'web');

  const send = async (req: FastifyRequest, reply: FastifyReply, candidates: readonly string[], cache: string) => {
    securityHeaders(reply);
    const body = await firstReadable(candidates);
    if (!body) {
      return reply
        .code(404)
        .type('application/json')
        .send({ error: { code: 'NotFound', message: `No console file ${req.url.split('?')[0]}.` } });
    }
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    reply
      .header('cache-control', cache)
      .header('etag', etag)
      .type(TYPES[path.extname(candidates[0]!)] ?? 'application/octet-stream');
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    return reply.send(body);
  };
  // The app changes with each install: revalidate every time (cheap with the ETag).
  const revalidate = 'no-cache';
  const route = { schema: { hide: true } };

  app.get('/', route, (req, reply) => send(req, reply, [path.join(webDir, 'index.html')], revalidate));
  app.get('/console/styles.css', route, (req, reply) => send(req, reply, [path.join(webDir, 'styles.css')], revalidate));
  app.get('/console/vendor/uPlot.esm.js', route, (req, reply) =>
    send(
      req,
      reply,
      uplotDir(root).map((d) => path.join(d, 'uPlot.esm.js')),
      'public, max-age=86400',
    ),
  );
  app.get('/console/vendor/uPlot.min.css', route, (req, reply) =>
    send(
      req,
      reply,
      uplotDir(root).map((d) => path.join(d, 'uPlot.min.css')),
      'public, max-age=86400',
    ),
  );

  // The address this browser connects from, for "add my current address" (it is the caller's
  // own address: nothing to hide, nothing to authenticate).
  app.get('/console/address', route, async (req, reply) => {
    securityHeaders(reply).header('cache-control', 'no-store');
    const ip = req.socket.remoteAddress ?? req.ip;
    return { address: ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip };
  });

  app.get<{ Params: { '*': string } }>('/console/*', route, async (req, reply) => {
    const name = req.params['*'];
    const file = path.resolve(distWeb, name);
    if (!APP_MODULE.test(name) || !file.startsWith(distWeb + path.sep)) {
      securityHeaders(reply);
      return reply.code(404).send({ error: { code: 'NotFound', message: `No console file /console/${name}.` } });
    }
    return send(req, reply, [file], revalidate);
  });
}
