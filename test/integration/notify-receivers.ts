// Real receivers on 127.0.0.1 (ephemeral ports) for the notification tests (threat-notify,
// threat-notify-dispatcher): an SMTP server (smtp-server) with a tiny MIME reader, and HTTP and
// HTTPS servers that fail, throttle, redirect, hang or accept, verifying signatures on the
// receiver side as a user would.
import { once } from 'node:events';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { verifyWebhookSignature, type SmtpSettings } from '../../src/threat/notify/index.js';

export const SECRET = 'whsec-0123456789abcdef';
export const FAST = { attempts: 5, baseMs: 5, capMs: 40 };

// ---------------------------------------------------------------- SMTP receiver

export interface Received {
  readonly from: string;
  readonly to: string[];
  readonly raw: string;
  readonly secure: boolean;
  readonly user: string | undefined;
}

export interface Smtp {
  readonly port: number;
  readonly mails: Received[];
  close(): Promise<void>;
}

export async function startSmtp(options: SMTPServerOptions): Promise<Smtp> {
  const mails: Received[] = [];
  const server = new SMTPServer({
    logger: false,
    ...options,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          secure: session.secure,
          user: typeof session.user === 'string' ? session.user : undefined,
        });
        callback();
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, close: () => new Promise((r) => server.close(() => r())) };
}

/** A tiny MIME reader: unfolded headers, and each text part decoded (quoted-printable or base64). */
export function parseMail(raw: string): { headers: Map<string, string>; text: string; html: string } {
  const split = (s: string): [Map<string, string>, string] => {
    const i = s.indexOf('\r\n\r\n');
    const head = s.slice(0, i).replace(/\r\n[ \t]+/g, ' ');
    const headers = new Map<string, string>();
    for (const line of head.split('\r\n')) {
      const c = line.indexOf(':');
      headers.set(line.slice(0, c).toLowerCase(), line.slice(c + 1).trim());
    }
    return [headers, s.slice(i + 4)];
  };
  const decode = (headers: Map<string, string>, body: string): string => {
    const enc = (headers.get('content-transfer-encoding') ?? '').toLowerCase();
    if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    if (enc === 'quoted-printable') {
      const bytes = body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      return Buffer.from(bytes, 'latin1').toString('utf8');
    }
    return body;
  };
  const [headers, body] = split(raw);
  const boundary = /boundary="?([^";]+)"?/.exec(headers.get('content-type') ?? '')?.[1];
  let text = '';
  let html = '';
  const parts = boundary ? body.split(`--${boundary}`).slice(1, -1) : [raw];
  for (const p of parts) {
    const [h, b] = split(p.replace(/^\r\n/, ''));
    const type = h.get('content-type') ?? '';
    if (type.startsWith('text/plain')) text = decode(h, b);
    if (type.startsWith('text/html')) html = decode(h, b);
  }
  return { headers, text, html };
}

// ---------------------------------------------------------------- HTTP receiver

export interface Hit {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly signatureOk: boolean;
}

export interface Receiver {
  readonly base: string;
  readonly hits: Hit[];
  /** Responses held by /hold until release(). */
  release(): void;
  close(): Promise<void>;
}

function handler(hits: Hit[], held: http.ServerResponse[], state: { holding: boolean }) {
  const counts = new Map<string, number>();
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0]!;
      const body = Buffer.concat(chunks);
      const n = (counts.get(path) ?? 0) + 1;
      counts.set(path, n);
      const signatureOk = verifyWebhookSignature(
        SECRET,
        req.headers['x-pgwarden-timestamp'] as string | undefined,
        body,
        req.headers['x-pgwarden-signature'] as string | undefined,
      );
      hits.push({ path, headers: req.headers, body: body.toString('utf8'), signatureOk });
      const reply = (status: number, headers: http.OutgoingHttpHeaders = {}): void => {
        res.writeHead(status, headers);
        res.end();
      };
      if (!signatureOk) return reply(401);
      switch (path) {
        case '/flaky':
          return reply(n <= 2 ? 503 : 204);
        case '/limited':
          return reply(n === 1 ? 429 : 200, n === 1 ? { 'Retry-After': '3600' } : {});
        case '/bad':
          return reply(400);
        case '/always503':
          return reply(503);
        case '/redirect':
          return reply(302, { Location: '/ok' });
        case '/hang':
          return; // never answers
        case '/hold':
          if (state.holding) held.push(res);
          else reply(200);
          return;
        default:
          return reply(200);
      }
    });
  };
}

export async function startReceiver(tls?: { certPem: string; keyPem: string }): Promise<Receiver> {
  const hits: Hit[] = [];
  const held: http.ServerResponse[] = [];
  const state = { holding: true };
  const h = handler(hits, held, state);
  const server = tls ? https.createServer({ cert: tls.certPem, key: tls.keyPem }, h) : http.createServer(h);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    base: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    hits,
    release() {
      state.holding = false;
      for (const r of held.splice(0)) if (!r.destroyed) r.writeHead(200), r.end();
    },
    close() {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export async function freePort(): Promise<number> {
  const s = http.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Settings for the SMTP receiver on `port`: no TLS, no AUTH, unless `over` says otherwise. */
export const smtpSettingsOn = (port: number, over: Partial<SmtpSettings> = {}): SmtpSettings => ({
  host: '127.0.0.1',
  port,
  secure: false,
  requireTls: false,
  from: 'pgwarden <alerts@pgwarden.test>',
  timeoutMs: 5_000,
  ...over,
});
