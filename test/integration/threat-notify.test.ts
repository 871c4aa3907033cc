// Alert notifications against real receivers on 127.0.0.1 (notify-receivers.ts): e-mail to a
// real SMTP server without TLS and with STARTTLS + AUTH, signed webhooks to real HTTP and HTTPS
// servers that fail, throttle, redirect, hang or accept, verifying signatures on the receiver
// side as a user would. The dispatcher is in threat-notify-dispatcher.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EmailNotifier, NotifySettingsError, verifyWebhookSignature, WebhookNotifier, type SmtpSettings } from '../../src/threat/notify/index.js';
import { createThrowawayCa, localhostCertificate } from '../../support/oidc.js';
import { alertFixture } from '../unit/threat/notify/alert-fixture.js';
import { FAST, freePort, parseMail, SECRET, smtpSettingsOn, startReceiver, startSmtp, type Hit, type Receiver, type Smtp } from './notify-receivers.js';

// ---------------------------------------------------------------- fixtures

let ca: Awaited<ReturnType<typeof createThrowawayCa>>;
let cert: { certPem: string; keyPem: string };
let plainSmtp: Smtp;
let tlsSmtp: Smtp;
let web: Receiver;
let secureWeb: Receiver;

const smtpSettings = (over: Partial<SmtpSettings> = {}): SmtpSettings => smtpSettingsOn(plainSmtp.port, over);

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
