// The notification dispatcher against real receivers on 127.0.0.1 (notify-receivers.ts): its
// results, throttling, bounded queue and close.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EmailNotifier, NotificationDispatcher, WebhookNotifier, type DeliveryResult, type SmtpSettings } from '../../src/threat/notify/index.js';
import { alertFixture } from '../unit/threat/notify/alert-fixture.js';
import { FAST, parseMail, SECRET, smtpSettingsOn, startReceiver, startSmtp, type Receiver, type Smtp } from './notify-receivers.js';

let plainSmtp: Smtp;
let web: Receiver;

const smtpSettings = (over: Partial<SmtpSettings> = {}): SmtpSettings => smtpSettingsOn(plainSmtp.port, over);

before(async () => {
  plainSmtp = await startSmtp({ disabledCommands: ['STARTTLS', 'AUTH'], authOptional: true });
  web = await startReceiver();
});

after(async () => {
  web.release();
  await Promise.all([plainSmtp.close(), web.close()]);
});

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
