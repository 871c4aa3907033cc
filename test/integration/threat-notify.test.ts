// Alert notifications against real receivers on 127.0.0.1 (ephemeral ports): a real SMTP server
// (smtp-server) without TLS and with STARTTLS + AUTH, real HTTP and HTTPS servers that fail,
// throttle, redirect, hang or accept, verifying signatures on the receiver side as a user would;
// then the dispatcher's results, throttling, bounded queue and close.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import {
  EmailNotifier,
  NotificationDispatcher,
  NotifySettingsError,
  verifyWebhookSignature,
  WebhookNotifier,
  type DeliveryResult,
  type SmtpSettings,
} from '../../src/threat/notify/index.js';
import { createThrowawayCa, localhostCertificate } from '../../support/oidc.js';
import { alertFixture } from '../unit/threat/notify/alert-fixture.js';

const SECRET = 'whsec-0123456789abcdef';
const FAST = { attempts: 5, baseMs: 5, capMs: 40 };

// ---------------------------------------------------------------- SMTP receiver

interface Received {
  readonly from: string;
  readonly to: string[];
  readonly raw: string;
  readonly secure: boolean;
  readonly user: string | undefined;
}

interface Smtp {
  readonly port: number;
  readonly mails: Received[];
  close(): Promise<void>;
}

async function startSmtp(options: SMTPServerOptions): Promise<Smtp> {
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
function parseMail(raw: string): { headers: Map<string, string>; text: string; html: string } {
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

interface Hit {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly signatureOk: boolean;
}

interface Receiver {
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

async function startReceiver(tls?: { certPem: string; keyPem: string }): Promise<Receiver> {
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

async function freePort(): Promise<number> {
  const s = http.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

// ---------------------------------------------------------------- fixtures

let ca: Awaited<ReturnType<typeof createThrowawayCa>>;
let cert: { certPem: string; keyPem: string };
let plainSmtp: Smtp;
let tlsSmtp: Smtp;
let web: Receiver;
let secureWeb: Receiver;

const smtpSettings = (over: Partial<SmtpSettings> = {}): SmtpSettings => ({
  host: '127.0.0.1',
  port: plainSmtp.port,
  secure: false,
  requireTls: false,
  from: 'pgwarden <alerts@pgwarden.test>',
  timeoutMs: 5_000,
  ...over,
});

before(async () => {
  ca = await createThrowawayCa('pgwarden notify test CA');
  cert = await localhostCertificate(ca);
  plainSmtp = await startSmtp({ disabledCommands: ['STARTTLS', 'AUTH'], authOptional: true });
  tlsSmtp = await startSmtp({
    key: cert.keyPem,
    cert: cert.certPem,
    authMethods: ['PLAIN', 'LOGIN'],
    onAuth(auth, _session, callback) {
      if (auth.username === 'mailer' && auth.password === 'S3cret-pass!') return callback(null, { user: 'mailer' });
      const err = new Error('Invalid username or password') as Error & { responseCode: number };
      err.responseCode = 535;
      return callback(err);
    },
  });
  web = await startReceiver();
  secureWeb = await startReceiver(cert);
});

after(async () => {
  web.release();
  secureWeb.release();
  await Promise.all([plainSmtp.close(), tlsSmtp.close(), web.close(), secureWeb.close()]);
});

// ---------------------------------------------------------------- e-mail

describe('e-mail over SMTP', () => {
  it('delivers a readable alert without TLS or AUTH', async () => {
    const email = new EmailNotifier(smtpSettings());
    const alert = alertFixture();
    const r = await email.send(alert, ['dba@example.test']);
    email.close();
    assert.equal(r.outcome, 'delivered', r.error);
    assert.equal(r.attempts, 1);
    assert.equal(r.channel, 'email');
    assert.equal(r.target, 'dba@example.test');
    assert.equal(r.alertId, alert.id);
    const got = plainSmtp.mails.at(-1)!;
    assert.deepEqual(got.to, ['dba@example.test']);
    assert.equal(got.from, 'alerts@pgwarden.test');
    const m = parseMail(got.raw);
    assert.equal(m.headers.get('subject'), '[pgwarden] High: Successful login after brute force on server orders');
    assert.equal(m.headers.get('from'), 'pgwarden <alerts@pgwarden.test>');
    assert.equal(m.headers.get('to'), 'dba@example.test');
    assert.equal(m.headers.get('auto-submitted'), 'auto-generated');
    assert.equal(m.headers.get('x-pgwarden-alert-id'), alert.id);
    assert.match(m.headers.get('content-type') ?? '', /multipart\/alternative/);
    for (const part of [m.text, m.html]) {
      assert.match(part, /Role app_writer logged in from 203\.0\.113\.7 after 42 failed attempts/);
      assert.match(part, /orders/);
      assert.match(part, /country NL, network AS64500 Example Hosting BV/);
      assert.match(part, /2025-03-04 10:15:00 UTC/);
      assert.match(part, /Times seen.*43/s);
      assert.match(part, /Failed logins.*42/s);
      assert.match(part, /Rotate the password of app_writer now/);
    }
  });

  it('escapes attacker text in the HTML that arrives', async () => {
    const email = new EmailNotifier(smtpSettings());
    const r = await email.send(alertFixture({ principal: '<script>alert(1)</script>' }), ['dba@example.test']);
    email.close();
    assert.equal(r.outcome, 'delivered', r.error);
    const m = parseMail(plainSmtp.mails.at(-1)!.raw);
    assert.doesNotMatch(m.html, /<script/);
    assert.match(m.html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  });

  it('delivers over STARTTLS with AUTH, verifying the server against the given CA', async () => {
    const email = new EmailNotifier(smtpSettings({ port: tlsSmtp.port, requireTls: true, user: 'mailer', password: 'S3cret-pass!', ca: ca.certPem }));
    const r = await email.send(alertFixture({ severity: 'Medium', title: 'Brute force attempts on server orders' }), ['secops@example.test']);
    email.close();
    assert.equal(r.outcome, 'delivered', r.error);
    const got = tlsSmtp.mails.at(-1)!;
    assert.equal(got.secure, true, 'the session was upgraded to TLS');
    assert.equal(got.user, 'mailer');
    assert.equal(parseMail(got.raw).headers.get('subject'), '[pgwarden] Medium: Brute force attempts on server orders');
    assert.doesNotMatch(got.raw, /S3cret-pass!/);
  });

  it('fails once, without retrying, on wrong credentials and never reports the password', async () => {
    const email = new EmailNotifier(smtpSettings({ port: tlsSmtp.port, requireTls: true, user: 'mailer', password: 'wrong-pass-123', ca: ca.certPem }), {
      retry: FAST,
    });
    const before = tlsSmtp.mails.length;
    const r = await email.send(alertFixture(), ['secops@example.test']);
    email.close();
    assert.equal(r.outcome, 'failed');
    assert.equal(r.attempts, 1);
    assert.match(r.error ?? '', /EAUTH/);
    assert.doesNotMatch(r.error ?? '', /wrong-pass-123/);
    assert.equal(tlsSmtp.mails.length, before);
  });

  it('refuses to send when STARTTLS is required but not offered, or the certificate is not trusted', async () => {
    const noTls = new EmailNotifier(smtpSettings({ requireTls: true }), { retry: FAST });
    const r1 = await noTls.send(alertFixture(), ['dba@example.test']);
    noTls.close();
    assert.equal(r1.outcome, 'failed');
    assert.equal(r1.attempts, 1);
    assert.match(r1.error ?? '', /ETLS.*STARTTLS/);
    const untrusted = new EmailNotifier(smtpSettings({ port: tlsSmtp.port, requireTls: true, user: 'mailer', password: 'S3cret-pass!' }), { retry: FAST });
    const r2 = await untrusted.send(alertFixture(), ['dba@example.test']);
    untrusted.close();
    assert.equal(r2.outcome, 'failed');
    assert.equal(r2.attempts, 1);
    assert.match(r2.error ?? '', /certificate/);
  });

  it('retries an unreachable SMTP server the configured number of times', async () => {
    const email = new EmailNotifier(smtpSettings({ port: await freePort() }), { retry: { attempts: 3, baseMs: 5, capMs: 20 } });
    const r = await email.send(alertFixture(), ['dba@example.test']);
    email.close();
    assert.equal(r.outcome, 'failed');
    assert.equal(r.attempts, 3);
    assert.match(r.error ?? '', /ECONNECTION|ECONNREFUSED/);
  });

  it('refuses settings that would send credentials in clear, and bad addresses', async () => {
    assert.throws(() => new EmailNotifier(smtpSettings({ user: 'u', password: 'p' })), NotifySettingsError);
    assert.throws(() => new EmailNotifier(smtpSettings({ port: 0 })), NotifySettingsError);
    assert.throws(() => new EmailNotifier(smtpSettings({ user: 'u' })), NotifySettingsError);
    const email = new EmailNotifier(smtpSettings());
    const r = await email.send(alertFixture(), ['dba@example.test\r\nRCPT TO:<x@evil.test>']);
    email.close();
    assert.equal(r.outcome, 'failed');
    assert.equal(r.attempts, 0);
  });
});

// ---------------------------------------------------------------- webhooks

describe('signed webhooks', () => {
  const hitsTo = (path: string, from = 0): Hit[] => web.hits.slice(from).filter((h) => h.path === path);

  it('retries 503 twice then delivers; the receiver verifies every attempt', async () => {
    const from = web.hits.length;
    const alert = alertFixture();
    const r = await new WebhookNotifier({ retry: FAST }).send(alert, `${web.base}/flaky`, SECRET);
    assert.equal(r.outcome, 'delivered', r.error);
    assert.equal(r.attempts, 3);
    assert.equal(r.target, `${web.base}/flaky`);
    const hits = hitsTo('/flaky', from);
    assert.equal(hits.length, 3);
    for (const h of hits) {
      assert.equal(h.signatureOk, true);
      assert.equal(h.headers['content-type'], 'application/json');
      assert.equal(h.headers['x-pgwarden-event'], 'alert');
      assert.match(String(h.headers['x-pgwarden-delivery']), /^[0-9a-f-]{36}$/);
      assert.match(String(h.headers['x-pgwarden-timestamp']), /^\d+$/);
      assert.match(String(h.headers['x-pgwarden-signature']), /^sha256=[0-9a-f]{64}$/);
    }
    assert.equal(new Set(hits.map((h) => h.headers['x-pgwarden-delivery'])).size, 1, 'one delivery id across retries');
    const body = JSON.parse(hits[2]!.body) as { schemaVersion: number; alert: typeof alert };
    assert.equal(body.schemaVersion, 1);
    assert.equal(body.alert.id, alert.id);
    assert.equal(body.alert.title, alert.title);
    assert.equal(body.alert.count, 43);
    assert.deepEqual(body.alert.evidence, alert.evidence);
    // a receiver with another secret, or a tampered body, would refuse it
    const h = hits[2]!;
    assert.equal(verifyWebhookSignature('another-secret', String(h.headers['x-pgwarden-timestamp']), h.body, String(h.headers['x-pgwarden-signature'])), false);
    assert.equal(
      verifyWebhookSignature(SECRET, String(h.headers['x-pgwarden-timestamp']), h.body.replace('43', '44'), String(h.headers['x-pgwarden-signature'])),
      false,
    );
  });

  it('does not retry a 400', async () => {
    const from = web.hits.length;
    const r = await new WebhookNotifier({ retry: FAST }).send(alertFixture(), `${web.base}/bad`, SECRET);
    assert.deepEqual([r.outcome, r.attempts, r.error], ['failed', 1, 'HTTP 400']);
    assert.equal(hitsTo('/bad', from).length, 1);
  });

  it('retries a 429, honouring Retry-After within the cap', async () => {
    const from = web.hits.length;
    const r = await new WebhookNotifier({ retry: FAST }).send(alertFixture(), `${web.base}/limited`, SECRET);
    assert.deepEqual([r.outcome, r.attempts], ['delivered', 2]);
    assert.equal(hitsTo('/limited', from).length, 2);
  });

  it('gives up after the configured attempts on a persistent 503', async () => {
    const from = web.hits.length;
    const r = await new WebhookNotifier({ retry: { attempts: 4, baseMs: 2, capMs: 10 } }).send(alertFixture(), `${web.base}/always503`, SECRET);
    assert.deepEqual([r.outcome, r.attempts, r.error], ['failed', 4, 'HTTP 503']);
    assert.equal(hitsTo('/always503', from).length, 4);
  });

  it('does not follow redirects', async () => {
    const from = web.hits.length;
    const r = await new WebhookNotifier({ retry: FAST }).send(alertFixture(), `${web.base}/redirect`, SECRET);
    assert.equal(r.outcome, 'failed');
    assert.equal(r.attempts, 1);
    assert.match(r.error ?? '', /HTTP 302/);
    assert.equal(hitsTo('/ok', from).length, 0);
  });

  it('fails against an unreachable port after the configured attempts', async () => {
    const port = await freePort();
    const r = await new WebhookNotifier({ retry: { attempts: 3, baseMs: 2, capMs: 10 } }).send(alertFixture(), `http://127.0.0.1:${port}/hook`, SECRET);
    assert.deepEqual([r.outcome, r.attempts], ['failed', 3]);
    assert.match(r.error ?? '', /ECONNREFUSED/);
  });

  it('bounds each attempt with the timeout', async () => {
    const r = await new WebhookNotifier({ retry: { attempts: 2, baseMs: 2, capMs: 10 }, timeoutMs: 150 }).send(alertFixture(), `${web.base}/hang`, SECRET);
    assert.deepEqual([r.outcome, r.attempts, r.error], ['failed', 2, 'timed out after 150 ms']);
  });

  it('speaks https with a given CA, and refuses an untrusted certificate without retrying', async () => {
    const from = secureWeb.hits.length;
    const ok = await new WebhookNotifier({ retry: FAST, ca: ca.certPem }).send(alertFixture(), `${secureWeb.base}/ok`, SECRET);
    assert.deepEqual([ok.outcome, ok.attempts], ['delivered', 1]);
    assert.equal(secureWeb.hits.slice(from).filter((h) => h.signatureOk).length, 1);
    const bad = await new WebhookNotifier({ retry: FAST }).send(alertFixture(), `${secureWeb.base}/ok`, SECRET);
    assert.deepEqual([bad.outcome, bad.attempts], ['failed', 1]);
    assert.match(bad.error ?? '', /certificate|CERT/i);
  });

  it('never shows URL credentials or query values in the result', async () => {
    const url = web.base.replace('http://', 'http://hookuser:hookpass@') + '/ok?token=tok-123&x=1';
    const r = await new WebhookNotifier({ retry: FAST }).send(alertFixture(), url, SECRET);
    assert.equal(r.outcome, 'delivered', r.error);
    assert.equal(r.target, `${web.base}/ok?token=redacted&x=redacted`);
    const bad = await new WebhookNotifier().send(alertFixture(), 'ftp://u:p@127.0.0.1/x?k=v', SECRET);
    assert.deepEqual([bad.outcome, bad.attempts, bad.target], ['failed', 0, 'ftp://127.0.0.1/x?k=redacted']);
  });
});

// ---------------------------------------------------------------- dispatcher

describe('notification dispatcher', () => {
  const collect = (): { results: DeliveryResult[]; onResult: (r: DeliveryResult) => void } => {
    const results: DeliveryResult[] = [];
    return { results, onResult: (r) => results.push(r) };
  };

  it('delivers to every address and webhook in the background and reports each outcome', async () => {
    const { results, onResult } = collect();
    const email = new EmailNotifier(smtpSettings(), { retry: FAST });
    const d = new NotificationDispatcher({ email, webhook: new WebhookNotifier({ retry: FAST }), onResult });
    const mailsBefore = plainSmtp.mails.length;
    const alert = alertFixture({ id: 'a1b2c3d4-0000-4000-8000-000000000001' });
    const ret = d.deliver(alert, {
      emails: ['one@example.test', 'two@example.test', 'one@example.test'],
      webhooks: [
        { url: `${web.base}/ok`, secret: SECRET },
        { url: `${web.base}/bad?key=abc`, secret: SECRET },
      ],
    });
    assert.equal(ret, undefined);
    assert.equal(results.length, 0, 'nothing is delivered while the caller runs');
    await d.idle();
    const byTarget = new Map(results.map((r) => [r.target, r]));
    assert.equal(results.length, 4);
    assert.equal(byTarget.get('one@example.test')?.outcome, 'delivered');
    assert.equal(byTarget.get('two@example.test')?.outcome, 'delivered');
    assert.equal(byTarget.get(`${web.base}/ok`)?.outcome, 'delivered');
    assert.deepEqual(
      { ...byTarget.get(`${web.base}/bad?key=redacted`), time: '' },
      { alertId: alert.id, channel: 'webhook', target: `${web.base}/bad?key=redacted`, outcome: 'failed', attempts: 1, error: 'HTTP 400', time: '' },
    );
    for (const r of results) assert.equal(r.alertId, alert.id);
    const mails = plainSmtp.mails.slice(mailsBefore);
    assert.deepEqual(mails.map((m) => m.to).sort(), [['one@example.test'], ['two@example.test']], 'one message per address');
    assert.deepEqual(d.stats(), { pending: 0, inFlight: 0, delivered: 3, failed: 1, dropped: 0, throttled: 0 });
    assert.deepEqual(await d.close(), { completed: true, abandoned: 0 });
  });

  it('re-sends a growing alert at most once per interval per target', async () => {
    const { results, onResult } = collect();
    let now = Date.parse('2025-03-04T10:00:00Z');
    const d = new NotificationDispatcher({ email: new EmailNotifier(smtpSettings()), webhook: new WebhookNotifier({ retry: FAST }), onResult, now: () => now });
    const targets = { emails: ['ops@example.test'], webhooks: [{ url: `${web.base}/ok`, secret: SECRET }] };
    const id = 'a1b2c3d4-0000-4000-8000-000000000002';
    const mailsBefore = plainSmtp.mails.length;
    d.deliver(alertFixture({ id, count: 10 }), targets);
    await d.idle();
    assert.equal(results.length, 2);
    now += 60_000; // a minute later, the count grew: throttled
    d.deliver(alertFixture({ id, count: 25 }), targets);
    now += 15 * 60_000; // past the interval, but the same count as last sent: nothing new to say
    d.deliver(alertFixture({ id, count: 10 }), targets);
    await d.idle();
    assert.equal(results.length, 2);
    d.deliver(alertFixture({ id, count: 30 }), targets); // past the interval and grown: re-sent
    await d.idle();
    assert.equal(results.length, 4);
    d.deliver(alertFixture({ id: 'a1b2c3d4-0000-4000-8000-000000000003', count: 1 }), targets); // another alert: not throttled
    await d.idle();
    assert.equal(results.length, 6);
    assert.ok(results.every((r) => r.outcome === 'delivered'));
    assert.equal(d.stats().throttled, 4);
    const counts = plainSmtp.mails.slice(mailsBefore).map((m) => parseMail(m.raw).text.match(/Times seen: +(\d+)/)?.[1]);
    assert.deepEqual(counts, ['10', '30', '1']);
    await d.close();
  });

  it('keeps a bounded queue, dropping the oldest and reporting it', async () => {
    web.hits.length = 0;
    const { results, onResult } = collect();
    const d = new NotificationDispatcher({ webhook: new WebhookNotifier({ retry: FAST }), concurrency: 1, maxPending: 2, onResult });
    const hook = { url: `${web.base}/hold`, secret: SECRET };
    const ids = [1, 2, 3, 4, 5].map((i) => `a1b2c3d4-0000-4000-8000-00000000010${i}`);
    for (const id of ids) d.deliver(alertFixture({ id }), { emails: [], webhooks: [hook] });
    // the first is in flight (held by the receiver), 2 and 3 were pushed out by 4 and 5
    assert.deepEqual(d.stats(), { pending: 2, inFlight: 1, delivered: 0, failed: 2, dropped: 2, throttled: 0 });
    assert.deepEqual(
      results.map((r) => [r.alertId, r.outcome, r.attempts]),
      [
        [ids[1], 'failed', 0],
        [ids[2], 'failed', 0],
      ],
    );
    assert.match(results[0]!.error ?? '', /dropped: more than 2 notifications were waiting/);
    while (!web.hits.some((h) => h.path === '/hold')) await new Promise((r) => setTimeout(r, 5));
    web.release();
    await d.idle();
    assert.deepEqual(
      results.slice(2).map((r) => [r.alertId, r.outcome]),
      [
        [ids[0], 'delivered'],
        [ids[3], 'delivered'],
        [ids[4], 'delivered'],
      ],
    );
    assert.equal(d.stats().dropped, 2);
    await d.close();
  });

  it('close() waits up to its timeout, then aborts and reports what was left', async () => {
    const { results, onResult } = collect();
    const d = new NotificationDispatcher({ webhook: new WebhookNotifier({ retry: FAST, timeoutMs: 60_000 }), concurrency: 1, onResult });
    d.deliver(alertFixture({ id: 'a1b2c3d4-0000-4000-8000-000000000201' }), { emails: [], webhooks: [{ url: `${web.base}/hang`, secret: SECRET }] });
    d.deliver(alertFixture({ id: 'a1b2c3d4-0000-4000-8000-000000000202' }), { emails: [], webhooks: [{ url: `${web.base}/ok`, secret: SECRET }] });
    const outcome = await d.close(100);
    assert.deepEqual(outcome, { completed: false, abandoned: 2 });
    assert.equal(results.length, 2);
    assert.ok(results.every((r) => r.outcome === 'failed'));
    assert.match(results.find((r) => r.alertId.endsWith('201'))!.error ?? '', /aborted/);
    assert.match(results.find((r) => r.alertId.endsWith('202'))!.error ?? '', /closed before this delivery started/);
    // after close, deliveries are refused with a result, never an exception
    d.deliver(alertFixture({ id: 'a1b2c3d4-0000-4000-8000-000000000203' }), { emails: [], webhooks: [{ url: `${web.base}/ok`, secret: SECRET }] });
    await new Promise((r) => setImmediate(r));
    assert.match(results.at(-1)!.error ?? '', /dispatcher is closed/);
  });

  it('reports e-mail as not configured, and survives a throwing result callback', async () => {
    const seen: DeliveryResult[] = [];
    const d = new NotificationDispatcher({
      webhook: new WebhookNotifier({ retry: FAST }),
      onResult: () => {
        throw new Error('recorder down');
      },
    });
    d.on('result', (r) => seen.push(r));
    d.deliver(alertFixture(), { emails: ['ops@example.test'], webhooks: [{ url: `${web.base}/ok`, secret: SECRET }] });
    await d.idle();
    assert.equal(seen.length, 2);
    const mail = seen.find((r) => r.channel === 'email')!;
    assert.deepEqual([mail.outcome, mail.attempts, mail.error], ['failed', 0, 'e-mail is not configured (no SMTP settings)']);
    assert.equal(seen.find((r) => r.channel === 'webhook')!.outcome, 'delivered');
    await d.close();
  });
});
