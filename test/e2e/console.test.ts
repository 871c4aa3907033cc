// The web console end to end, in real Chromium against a real platform: sign in by keyboard,
// create a server, open the firewall to 127.0.0.1 and connect with psql through the gateway,
// approve a private endpoint, raise a BruteForce alert with failed logins and read it, find a
// statement in the audit log, and check that a Reader sees no edit control and that the API
// refuses a forged call. Screenshots of every page go to test-artifacts/console/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { conninfo, psql } from '../helpers/clients.js';
import { launchBrowser, screenshot, tabTo, type Watched } from './browser.js';
import { CONSOLE_CSP } from '../../src/control/console.js';

// Browser globals used in page functions (the root tsconfig has no DOM lib).
declare const sessionStorage: { getItem(key: string): string | null };
declare const localStorage: { length: number };
declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };

const SERVER = 'orders';
const ADMIN = 'orderadmin';
const PASSWORD = 'Ord3rs-Passw0rd!';
const NEEDLE = 'e2e_needle_4242';
const LONG = 60_000;
const READ_ONLY = 'Read-only: your role (Reader) cannot change settings.';

let t: TestPlatform;
let b: Watched;
let page: Page;
let url: string;
let readerToken: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const connect = (password = PASSWORD, sql = 'select 1') =>
  psql(conninfo(t, { user: `${ADMIN}@${SERVER}`, sslmode: 'require', application_name: 'e2e-console' }), password, ['-c', sql]);

/** Loads a hash route afresh (a same-document hash change would keep the old data) and waits
 * for its heading. */
async function go(p: Page, hash: string, heading: RegExp): Promise<void> {
  await p.goto(`${url}/#${hash}`);
  await p.reload();
  await p.getByRole('heading', { level: 1, name: heading }).waitFor({ timeout: LONG });
}

before(async () => {
  t = await startTestPlatform();
  url = t.target.url.replace(/\/$/, '');
  readerToken = (await t.api<{ token: string }>('POST', '/tokens', { role: 'Reader', name: 'e2e-reader' })).token;
  b = await launchBrowser();
  page = b.watch(b.context.pages()[0] ?? (await b.context.newPage()));
});

after(async () => {
  await b?.close();
  await t?.stop();
});

test('the console is served on the API port with a strict CSP, the right types and no traversal', async () => {
  const req = b.context.request;
  const index = await req.get(`${url}/`);
  assert.equal(index.status(), 200);
  const h = index.headers();
  assert.equal(h['content-security-policy'], CONSOLE_CSP);
  assert.equal(h['x-content-type-options'], 'nosniff');
  assert.equal(h['referrer-policy'], 'no-referrer');
  assert.match(h['content-type']!, /^text\/html; charset=utf-8/);
  assert.match(await index.text(), /<script type="module" src="\/console\/main.js"><\/script>/);
  for (const [path, type] of [
    ['/console/main.js', /^text\/javascript/],
    ['/console/pages/network.js', /^text\/javascript/],
    ['/console/styles.css', /^text\/css/],
    ['/console/vendor/uPlot.esm.js', /^text\/javascript/],
    ['/console/vendor/uPlot.min.css', /^text\/css/],
  ] as const) {
    const r = await req.get(`${url}${path}`);
    assert.equal(r.status(), 200, path);
    assert.match(r.headers()['content-type']!, type, path);
    assert.equal(r.headers()['content-security-policy'], CONSOLE_CSP, path);
    assert.ok(r.headers()['cache-control'], path);
  }
  for (const path of [
    '/console/%2e%2e%2f%2e%2e%2fpackage.json',
    '/console/..%2f..%2fsrc%2fcontrol%2fconsole.ts',
    '/console/%2e%2e/web/index.html',
    '/console/nope.js',
  ]) {
    const r = await req.get(`${url}${path}`);
    assert.equal(r.status(), 404, path);
    assert.doesNotMatch(await r.text(), /"name": "pgwarden"|registerConsole/, path);
  }
});

test('sign in with the keyboard: a wrong token is refused with the API message, the right one is kept out of the URL', async () => {
  await page.goto(`${url}/`);
  await page.getByLabel('API token').waitFor();
  await tabTo(page, 'input[name="token"]');
  await page.keyboard.type('not-a-token');
  await page.keyboard.press('Enter');
  await page.getByText('A valid API token is required (Authorization: Bearer <token>).').waitFor();
  await screenshot(page, 'signin-refused');
  await page.getByLabel('API token').fill('');
  await page.keyboard.type(t.target.token);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Servers' }).waitFor();
  assert.equal(await page.getByTestId('role').textContent(), 'Owner');
  assert.equal(await page.getByTestId('role-banner').count(), 0, 'an Owner sees no restriction banner');
  assert.ok(!page.url().includes(t.target.token), 'the token is not in the URL');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('pgwarden.token')), t.target.token);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
  await page.getByText('No servers yet.').waitFor();
  await screenshot(page, 'servers-empty');
});

test('create a server by keyboard: login and password rules as you type, the API message on submit', async () => {
  await tabTo(page, 'input[name="name"]');
  await page.keyboard.type(SERVER);
  await page.keyboard.press('Tab');
  await page.keyboard.type('Admin');
  await page.getByText("'Admin' is a reserved name.").waitFor();
  for (let i = 0; i < 5; i++) await page.keyboard.press('Backspace');
  await page.keyboard.type('pg_owner');
  await page.getByText('Names starting with pg_ are reserved.').waitFor();
  for (let i = 0; i < 8; i++) await page.keyboard.press('Backspace');
  await page.keyboard.type(ADMIN);
  assert.equal(await page.locator('input[name="administratorLogin"]').getAttribute('aria-invalid'), 'false');
  await page.keyboard.press('Tab');
  await page.keyboard.type('short');
  const rules = page.getByRole('list', { name: 'Password rules' });
  assert.match((await rules.textContent())!, /✗ 8 to 128 characters/);
  assert.match((await rules.textContent())!, /✗ three of/);
  await page.keyboard.press('Enter');
  await page.getByText('The password does not meet the rules above.').waitFor();
  await screenshot(page, 'servers-create-rules');
  await page.keyboard.press('Control+A');
  await page.keyboard.type(PASSWORD);
  assert.doesNotMatch((await rules.textContent())!, /✗/);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: `Server ${SERVER}` }).waitFor({ timeout: LONG });
  await page.locator('.facts .state-ready').waitFor({ timeout: LONG });
  await screenshot(page, 'server-overview');

  // Submitting the same name again: the client rules pass, the API refuses, its message shows.
  await go(page, '/servers', /^Servers$/);
  const row = page.locator('tbody tr', { hasText: SERVER });
  assert.match((await row.textContent())!, /Ready.*Required, TLS 1\.2\+.*Enabled/);
  await page.getByLabel('Server name').fill(SERVER);
  await page.getByLabel('Administrator login').fill('someone');
  await page.getByLabel('Administrator password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create server' }).click();
  await page
    .getByRole('alert')
    .filter({ hasText: /already exists/ })
    .waitFor({ timeout: LONG });
  await screenshot(page, 'servers-list');
});

test('firewall: validation as you type, "add my current address" (127.0.0.1), live at the gateway, then psql connects', async () => {
  const before = await connect();
  assert.notEqual(before.code, 0);
  assert.match(before.stderr, /no pg_hba\.conf entry for host "127\.0\.0\.1"/);

  await go(page, `/servers/${SERVER}/network`, /Connection security of orders/);
  await page.getByText('No firewall rules: no address can connect over the public listener.').waitFor();
  await page.getByLabel('Start address').fill('300.1.1.1');
  await page.getByText('Not an IPv4 or IPv6 address.').first().waitFor();
  await page.getByLabel('Start address').fill('10.0.0.1');
  await page.getByLabel('End address').fill('2001:db8::1');
  await page.getByText('Start and end must be of the same family (both IPv4 or both IPv6).').waitFor();

  await page.getByRole('button', { name: 'Add my current address' }).click();
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { document: { querySelector(s: string): { value: string } } }).document.querySelector('input[name="startIpAddress"]').value !==
      '10.0.0.1',
  );
  assert.equal(await page.getByLabel('Start address').inputValue(), '127.0.0.1');
  assert.equal(await page.getByLabel('End address').inputValue(), '127.0.0.1');
  await page.getByLabel('Rule name').fill('my-laptop');
  await page.getByRole('button', { name: 'Add rule' }).click();
  await page.getByText(/Rule my-laptop: live at the gateway since/).waitFor({ timeout: 15_000 });
  await page.locator('tbody tr', { hasText: 'my-laptop' }).waitFor();

  const ok = await connect(PASSWORD, 'select current_user');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, ADMIN);

  // An IPv6 rule, edited in place.
  await page.getByLabel('Rule name').fill('lab-v6');
  await page.getByLabel('Start address').fill('2001:db8::1');
  await page.getByLabel('End address').fill('2001:db8::ff');
  await page.getByRole('button', { name: 'Add rule' }).click();
  await page.getByText(/Rule lab-v6: live at the gateway/).waitFor({ timeout: 15_000 });
  await page.getByRole('button', { name: 'Edit rule lab-v6' }).click();
  await page.getByLabel('End address of lab-v6').fill('2001:DB8::1FF');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.locator('tbody tr', { hasText: '2001:db8::1ff' }).waitFor({ timeout: 15_000 });
  const rule = await t.api<{ endIpAddress: string }>('GET', `/servers/${SERVER}/firewallRules/lab-v6`);
  assert.equal(rule.endIpAddress, '2001:db8::1ff');

  // The access check explains both answers.
  await page.getByLabel('Client address').fill('192.0.2.7');
  await page.getByRole('button', { name: 'Check access' }).click();
  await page
    .locator('#access-result')
    .getByText(/^Refused:/)
    .waitFor();
  assert.match((await page.locator('#access-result').textContent())!, /no pg_hba\.conf entry for host "192\.0\.2\.7"/);
  await page.getByLabel('Client address').fill('127.0.0.1');
  await page.getByRole('button', { name: 'Check access' }).click();
  await page
    .locator('#access-result')
    .getByText(/^Allowed:/)
    .waitFor();
  assert.match((await page.locator('#access-result').textContent())!, /my-laptop/);
  await screenshot(page, 'network');
});

test('a Pending private endpoint is approved from the console', async () => {
  await t.api('PUT', `/servers/${SERVER}/privateEndpointConnections/4242`, { description: 'orders app via load balancer' });
  await go(page, `/servers/${SERVER}/network`, /Connection security/);
  const row = page.locator('tbody tr', { hasText: '4242' });
  assert.match((await row.textContent())!, /azure-private-link.*Pending/);
  await page.getByRole('button', { name: 'Approve private endpoint 4242' }).click();
  await page.getByText(/Private endpoint 4242 approved: live at the gateway/).waitFor({ timeout: 15_000 });
  await page.locator('tbody tr', { hasText: '4242' }).filter({ hasText: 'Approved' }).waitFor();
  assert.equal((await t.api<{ status: string }>('GET', `/servers/${SERVER}/privateEndpointConnections/4242`)).status, 'Approved');
  assert.equal(await page.getByRole('button', { name: 'Approve private endpoint 4242' }).count(), 0);
  await screenshot(page, 'network-endpoint-approved');
});

test('audit: statement audit switched on in the console, a psql statement found by text, its record and verify', async () => {
  await go(page, `/servers/${SERVER}`, /Server orders/);
  await page.getByLabel('READ').check();
  await page.getByRole('button', { name: 'Save audit settings' }).click();
  await page.getByText(/Audit settings: live at the gateway/).waitFor({ timeout: 15_000 });
  const r = await connect(PASSWORD, `select '${NEEDLE}' as marker`);
  assert.equal(r.code, 0, r.stderr);

  await go(page, '/audit', /Audit log/);
  await page.getByLabel('Text').fill(NEEDLE);
  await page.getByLabel('Statement class').selectOption('READ');
  const row = page.locator('#audit-results tbody tr', { hasText: NEEDLE });
  for (let i = 0; i < 20 && (await row.count()) === 0; i++) {
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('#audit-results p').first().waitFor();
    await sleep(250);
  }
  assert.equal(await row.count(), 1);
  assert.match((await row.textContent())!, new RegExp(`statement.*${SERVER}.*${ADMIN}.*READ.*success.*select '${NEEDLE}'`));
  await row.getByRole('button', { name: /Show record/ }).click();
  const record = page.getByTestId('audit-record');
  await record.waitFor();
  assert.match((await record.textContent())!, /applicationNamee2e-console/);
  await screenshot(page, 'audit-record');

  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Export JSON lines' }).click();
  const file = await (await download).path();
  const { readFileSync } = await import('node:fs');
  const lines = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: { text?: string } });
  assert.equal(lines.length, 1);
  assert.match(lines[0]!.event.text!, new RegExp(NEEDLE));

  await page.getByRole('button', { name: 'Verify now' }).click();
  const report = page.getByTestId('verify-report');
  await report.waitFor({ timeout: LONG });
  assert.match(
    (await report.textContent())!,
    /Verified at .*nothing was changed, removed, reordered or cut off\..*Last checkpoint#\d+, covering records 1 to \d+/,
  );
  await screenshot(page, 'audit');
});

test('server parameters: work_mem set in the console is what a psql session through the gateway gets', async () => {
  await go(page, `/servers/${SERVER}`, /Server orders/);
  const section = page.locator('section', { has: page.getByRole('heading', { name: 'Server parameters' }) });
  await section.locator('tbody tr', { hasText: 'max_prepared_transactions' }).waitFor();
  await page.getByLabel('Parameter', { exact: true }).selectOption('work_mem');
  await page.getByLabel('Value', { exact: true }).fill('16MB');
  await page.getByRole('button', { name: 'Save parameter' }).click();
  await page.getByText('work_mem = 16MB: applied.').waitFor({ timeout: LONG });
  const r = await connect(PASSWORD, 'show work_mem');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^16MB$/m);
  await page.getByLabel('Value', { exact: true }).fill("1MB'\nlisten_addresses='*");
  await page.getByRole('button', { name: 'Save parameter' }).click();
  await page
    .getByText('Invalid value for work_mem: quotes, backslashes, # and control characters (such as newlines) are not allowed.')
    .waitFor({ timeout: LONG });
  await screenshot(page, 'server-parameters');
});

test('threat protection: the policy is enabled in the console, failed logins raise a BruteForce alert shown with evidence, then dismissed', async () => {
  await go(page, `/servers/${SERVER}/threat`, /Threat protection of orders/);
  await page.getByLabel('Threat protection enabled').check();
  await page.getByRole('button', { name: 'Save policy' }).click();
  await page.getByText(/Alert policy: live at the gateway/).waitFor({ timeout: 15_000 });
  assert.equal((await t.api<{ state: string }>('GET', `/servers/${SERVER}/securityAlertPolicy`)).state, 'Enabled');

  for (let i = 0; i < 12; i++) await connect(`wrong-password-${i}`);
  const link = page.getByRole('link', { name: 'Brute force attempts' });
  for (let i = 0; i < 20 && (await link.count()) === 0; i++) {
    await sleep(500);
    await page.getByRole('button', { name: 'Apply filters' }).click();
  }
  const row = page.locator('tbody tr', { has: link });
  assert.match((await row.textContent())!, /Medium.*BruteForce.*127\.0\.0\.1.*orderadmin/);
  // The chart, loaded afresh, counts the failed logins (uPlot draws on a canvas).
  await go(page, `/servers/${SERVER}/threat`, /Threat protection of orders/);
  await page.locator('.chart canvas').first().waitFor();
  assert.match((await page.locator('.chart-figure figcaption').textContent())!, /Total: [1-9]\d* successful, (1[2-9]|[2-9]\d) failed\./);
  await screenshot(page, 'threat');

  await link.click();
  const detail = page.getByTestId('alert-detail');
  await detail.waitFor();
  const text = (await detail.textContent())!;
  assert.match(text, /Recommended action.*firewall/);
  assert.match(text, /MITRE tacticCredential Access/);
  assert.match(text, /Evidence/);
  await screenshot(page, 'threat-alert');
  await page.getByRole('button', { name: 'Dismiss' }).click();
  await page
    .getByTestId('alert-detail')
    .getByText(/Changed by/)
    .waitFor();
  const alerts = await t.api<{ value: { type: string; state: string }[] }>('GET', `/servers/${SERVER}/alerts?type=BruteForce`);
  assert.ok(alerts.value.some((a) => a.state === 'Dismissed'));
});

test('threat protection: "test a statement" shows the detector\'s verdict, shapes and fingerprint', async () => {
  await go(page, `/servers/${SERVER}/threat`, /Threat protection of orders/);
  await page.getByRole('textbox', { name: 'Statement', exact: true }).fill("SELECT * FROM products WHERE name ILIKE '%' OR '1'='1%'");
  await page.getByRole('button', { name: 'Test statement' }).click();
  const verdict = page.locator('#sql-check-verdict');
  await verdict.waitFor();
  assert.match(
    (await verdict.textContent())!,
    /^VerdictSQL injectionShapesboolean-probeWhya condition that does not depend on the row.*Fingerprint[0-9a-f]{16}$/,
  );
  await screenshot(page, 'threat-sql-check');
  await page.getByRole('textbox', { name: 'Statement', exact: true }).fill("SELECT * FROM products WHERE name ILIKE '%lamp%'");
  await page.getByRole('button', { name: 'Test statement' }).click();
  await page.locator('#sql-check-verdict', { hasText: 'No injection found' }).waitFor();
});

test('identity: set the administrator, add a principal; the platform-wide alert list', async () => {
  await go(page, `/servers/${SERVER}/identity`, /Identity of orders/);
  await page.getByText('No identity administrator: token login is disabled on this server.').waitFor();
  // The API's message on a refused change: a principal needs an administrator first.
  await page.getByLabel('Database role', { exact: true }).fill('app_reader');
  await page.getByLabel('Object id').last().fill('00000000-0000-0000-0000-000000000042');
  await page.getByRole('button', { name: 'Add principal' }).click();
  await page.getByText(`Server '${SERVER}' has no identity administrator: set one before adding principals.`).waitFor();

  await page.getByLabel('Issuer').fill('https://login.example.test/tenant-1/v2.0');
  await page.getByLabel('Audience').fill('api://pgwarden');
  await page.getByLabel('Login (database role)').fill('aad_admin');
  await page.getByLabel('Object id').first().fill('11111111-2222-3333-4444-555555555555');
  await page.getByRole('button', { name: 'Save administrator' }).click();
  await page.getByText(/Identity administrator: live at the gateway/).waitFor({ timeout: 15_000 });
  assert.match((await page.locator('.facts').first().textContent())!, /Loginaad_admin/);
  await page.getByLabel('Database role', { exact: true }).fill('app_reader');
  await page.getByLabel('Object id').last().fill('00000000-0000-0000-0000-000000000042');
  await page.getByRole('button', { name: 'Add principal' }).click();
  await page.locator('tbody tr', { hasText: 'app_reader' }).waitFor({ timeout: 15_000 });
  await screenshot(page, 'identity');

  await go(page, '/alerts', /^Alerts$/);
  await page.getByLabel('State').selectOption('');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.locator('tbody tr', { hasText: 'Dismissed' }).first().waitFor();
  await screenshot(page, 'alerts');
});

test('a Reader sees everything, no edit control, the read-only banner; the API refuses a forged call', async () => {
  const reader = b.watch(await b.context.newPage()); // a new tab: its own, empty sessionStorage
  await reader.goto(`${url}/`);
  await reader.getByLabel('API token').fill(readerToken);
  await reader.keyboard.press('Enter');
  await reader.getByRole('heading', { level: 1, name: 'Servers' }).waitFor();
  assert.equal(await reader.getByTestId('role-banner').textContent(), READ_ONLY);
  const edits = /^(Create server|Add|Edit|Delete|Approve|Reject|Save|Stop|Start|Dismiss|Resolve|Unblock|Remove)/;
  const pages: [string, RegExp, string][] = [
    ['/servers', /^Servers$/, 'reader-servers'],
    [`/servers/${SERVER}`, /Server orders/, 'reader-server'],
    [`/servers/${SERVER}/network`, /Connection security/, 'reader-network'],
    [`/servers/${SERVER}/identity`, /Identity of/, 'reader-identity'],
    [`/servers/${SERVER}/threat`, /Threat protection of/, 'reader-threat'],
    ['/audit', /Audit log/, 'reader-audit'],
  ];
  for (const [hash, heading, shot] of pages) {
    await go(reader, hash, heading);
    const labels = await reader.getByRole('button').evaluateAll((els) => els.map((e) => `${e.getAttribute('aria-label') ?? ''}|${e.textContent ?? ''}`));
    const found = labels.filter((l) => l.split('|').some((s) => edits.test(s.trim())));
    assert.deepEqual(found, [], `${hash}: edit controls for a Reader`);
    assert.equal(await reader.locator('input[type="checkbox"]').count(), 0, `${hash}: no switches for a Reader`);
    assert.equal(await reader.getByTestId('role-banner').textContent(), READ_ONLY, hash);
    await screenshot(reader, shot);
  }
  // Everything is still visible: the rules, the endpoint, the settings.
  await go(reader, `/servers/${SERVER}/network`, /Connection security/);
  await reader.locator('tbody tr', { hasText: 'my-laptop' }).waitFor();
  assert.equal(await reader.getByTestId('public-access').textContent(), 'Enabled');

  const forged = await reader.evaluate(async (server) => {
    const res = await fetch(`/servers/${server}/firewallRules`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sessionStorage.getItem('pgwarden.token')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'forged', startIpAddress: '0.0.0.0', endIpAddress: '255.255.255.255' }),
    });
    return { status: res.status, body: (await res.json()) as { error: { message: string } } };
  }, SERVER);
  assert.equal(forged.status, 403);
  assert.equal(forged.body.error.message, 'The Reader role is not allowed to perform this operation.');
  const rules = await t.api<{ value: { name: string }[] }>('GET', `/servers/${SERVER}/firewallRules`);
  assert.ok(!rules.value.some((r) => r.name === 'forged'));
  await reader.close();
});

test('narrow window (480×900): every page fits without sideways scrolling', async () => {
  await page.setViewportSize({ width: 480, height: 900 });
  for (const [hash, heading, shot] of [
    ['/servers', /^Servers$/, 'narrow-servers'],
    [`/servers/${SERVER}`, /Server orders/, 'narrow-server'],
    [`/servers/${SERVER}/network`, /Connection security/, 'narrow-network'],
    [`/servers/${SERVER}/threat`, /Threat protection of/, 'narrow-threat'],
    ['/audit', /Audit log/, 'narrow-audit'],
  ] as const) {
    await go(page, hash, heading);
    await page.waitForLoadState('networkidle');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${hash} scrolls sideways by ${overflow}px`);
    await screenshot(page, shot);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
});

test('no request left localhost, no CSP violation, no script error', () => {
  assert.deepEqual(b.external, []);
  assert.deepEqual(b.cspViolations, []);
  // The API's refusals that the tests provoke show up as failed resource loads; nothing else may.
  const unexpected = b.errors.filter((e) => !/Failed to load resource: the server responded with a status of (401|403|404|409)/.test(e));
  assert.deepEqual(unexpected, []);
});
