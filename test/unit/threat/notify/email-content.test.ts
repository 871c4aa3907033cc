// The alert e-mail as a reader sees it: subject, what/where/when/how often, evidence, what to do;
// and what must never be in it: unescaped attacker text in HTML, secrets, external resources.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, renderAlertEmail } from '../../../../src/threat/notify/email-content.js';
import { alertFixture } from './alert-fixture.js';

describe('alert e-mail content', () => {
  it('has the severity and title in the subject', () => {
    assert.equal(renderAlertEmail(alertFixture()).subject, '[pgwarden] High: Successful login after brute force on server orders');
    assert.equal(
      renderAlertEmail(alertFixture({ severity: 'Low', title: 'Principal not seen in 60 days on server x' })).subject,
      '[pgwarden] Low: Principal not seen in 60 days on server x',
    );
  });

  it('says what, where, from where, when, how often, the evidence and what to do (text and HTML)', () => {
    const m = renderAlertEmail(alertFixture());
    for (const part of [m.text, m.html]) {
      assert.match(part, /Role app_writer logged in from 203\.0\.113\.7 after 42 failed attempts/);
      assert.match(part, /Server<?.*orders/s);
      assert.match(part, /203\.0\.113\.7, country NL, network AS64500 Example Hosting BV \(hosting\)/);
      assert.match(part, /from 2025-03-04 10:15:00 UTC to 2025-03-04 10:20:30 UTC/);
      assert.match(part, /Times seen.*43/s);
      assert.match(part, /Failed logins.*42/s);
      assert.match(part, /Users.*app_writer, postgres/s);
      assert.match(part, /Rotate the password of app_writer now and block 203\.0\.113\.7 with the firewall\./);
      assert.match(part, /Credential Access/);
      assert.match(part, /0b5c3f0e-8a47-4a53-9c55-0d2f1f8a7e21/);
      assert.match(part, /https:\/\/pgwarden\.example\/servers\/orders\/alerts\//);
    }
  });

  it('escapes attacker-chosen text in the HTML part', () => {
    const evil = '<script>alert(1)</script>';
    const m = renderAlertEmail(
      alertFixture({
        principal: `"><img src=x onerror=alert(1)>${evil}`,
        description: `Login by ${evil} & friends`,
        evidence: { applicationName: `'; DROP TABLE x; --<b>`, [`<i>key</i>`]: 'v' },
        location: { country: '<u>NL</u>', asn: null, organization: '"Org" & <Co>', kind: 'isp' },
      }),
    );
    assert.doesNotMatch(m.html, /<script|<img|<b>|<i>|<u>/i);
    assert.ok(m.html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.ok(m.html.includes('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;'));
    assert.ok(m.html.includes('&#39;; DROP TABLE x; --&lt;b&gt;'));
    assert.ok(m.html.includes('&quot;Org&quot; &amp; &lt;Co&gt;'));
    assert.ok(m.html.includes('Login by &lt;script&gt;alert(1)&lt;/script&gt; &amp; friends'));
    // the text part keeps the characters as they are (it is not HTML)
    assert.ok(m.text.includes(`Principal:`) && m.text.includes(evil));
  });

  it('escapeHtml covers the five HTML metacharacters', () => {
    assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });

  it('drops control characters so a name cannot forge lines or headers', () => {
    const m = renderAlertEmail(alertFixture({ principal: 'bob\r\nSubject: fake\u202Egnp.exe', title: 'T\r\nBcc: x@evil.example' }));
    assert.doesNotMatch(m.subject, /[\r\n]/);
    assert.doesNotMatch(m.text, /\nSubject: fake/);
    assert.doesNotMatch(m.text, /\u202E/);
    assert.match(m.text, /bob {2}Subject: fake gnp\.exe/);
  });

  it('masks evidence keys that name secrets and never shows link credentials', () => {
    const m = renderAlertEmail(
      alertFixture({
        evidence: { password: 'hunter2', nested: { apiKey: 'AKIA123', ok: 'visible' }, clientSecret: 's3cr3t' },
        consoleUrl: 'https://admin:pw123@pgwarden.example/alerts/1',
      }),
    );
    for (const part of [m.text, m.html]) {
      assert.doesNotMatch(part, /hunter2|AKIA123|s3cr3t|pw123|admin:/);
      assert.match(part, /\[redacted\]/);
      assert.match(part, /visible/);
      assert.match(part, /https:\/\/pgwarden\.example\/alerts\/1/);
    }
  });

  it('links nothing but an http(s) console URL and loads nothing external', () => {
    const m = renderAlertEmail(alertFixture({ consoleUrl: 'javascript:alert(1)' }));
    assert.doesNotMatch(m.html, /javascript:|href=/);
    assert.doesNotMatch(renderAlertEmail(alertFixture()).html, /<img|<link|<script|@import|url\(|src=/i);
  });

  it('handles an alert with no principal, address or location and empty evidence', () => {
    const m = renderAlertEmail(
      alertFixture({
        principal: null,
        sourceAddress: null,
        location: null,
        evidence: {},
        firstSeen: '2025-03-04T10:15:00Z',
        lastSeen: '2025-03-04T10:15:00Z',
        count: 1,
      }),
    );
    assert.match(m.text, /Principal: +unknown/);
    assert.match(m.text, /Source: +unknown address/);
    assert.match(m.text, /When: +2025-03-04 10:15:00 UTC\n/);
    assert.match(m.text, /Evidence\n {2}none recorded/);
    assert.match(m.html, /None recorded\./);
  });

  it('bounds what a huge evidence object can put into the message', () => {
    const evidence: Record<string, unknown> = {};
    for (let i = 0; i < 500; i++) evidence[`k${i}`] = 'x'.repeat(10_000);
    const m = renderAlertEmail(alertFixture({ evidence }));
    assert.ok(m.html.length < 100_000, String(m.html.length));
    assert.match(m.text, /more items in the console/);
  });
});
