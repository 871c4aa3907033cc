// The console's "Encryption and backups" tab end to end, in real Chromium against a real
// platform: open it by keyboard, take a backup from the page and see it listed with its size and
// WAL range, restore it to "latest" into a new server followed to the end and open that server;
// the API's refusals shown as the API words them; a local time converted to UTC for a point in
// time; a Reader sees all of it and no control. The key part: the system-managed key and its
// rotation, then a customer key in SoftHSM2 disabled in the token (the Inaccessible banner, the
// refusal while disabled) and enabled again (revalidate from the banner).
// Screenshots go to test-artifacts/console/encryption-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { SOFTHSM_MODULE, SOFTHSM_MODULE_NAME, SOFTHSM_MODULES, hsmOperator, initSoftHsmToken } from '../helpers/softhsm.js';
import { launchBrowser, screenshot, tabTo, tabToNamed, type Watched } from './browser.js';

// Browser globals used in page functions (the root tsconfig has no DOM lib).
declare const sessionStorage: { getItem(key: string): string | null; length: number; key(i: number): string | null };
declare const localStorage: { length: number };
declare const document: {
  documentElement: { scrollWidth: number; clientWidth: number; outerHTML: string };
  body: unknown;
  querySelector(s: string): { value: string } | null;
};
declare const MutationObserver: new (
  cb: (records: { addedNodes: ArrayLike<{ querySelector?(s: string): unknown; matches?(s: string): boolean }> }[]) => void,
) => {
  observe(target: unknown, options: { childList: boolean; subtree: boolean }): void;
};
declare const window: Record<string, unknown>;

const SERVER = 'ledger';
const COPY = 'ledger-copy';
const VAULT = 'vault';
const PASSWORD = 'Ledg3r-Passw0rd!';
const LONG = 180_000;
const READ_ONLY = 'Read-only: your role (Reader) cannot change settings.';
const INACCESSIBLE = 'Server is inaccessible: its encryption key cannot be accessed.';
// SoftHSM2 for the customer-managed key: a token in a temp dir (SOFTHSM2_CONF is set before the
// platform loads the module).
const HSM_MODULE = SOFTHSM_MODULE;
const HSM_TOKEN = 'pgwarden-e2e';
const HSM_PIN = '5309-e2e-pin';
const HSM_KEY = 'ledger-kek';
let hsmDir: string | null = null;

const hsmKey = (action: 'disable' | 'enable', label: string) => hsmOperator(action, { token: HSM_TOKEN, pin: HSM_PIN, label });

let t: TestPlatform;
let b: Watched;
let page: Page;
let url: string;
let readerToken: string;

interface KeyDoc {
  type: string;
  kekVersion: number;
  keyRef: string;
  pkcs11: { module: string; tokenLabel: string; keyLabel: string } | null;
  status: string;
  reason: string | null;
  lastValidatedAt: string | null;
  checkIntervalSeconds: number;
  volume: { backend: string; sizeBytes: number; open: boolean };
}
interface BackupView {
  id: string;
  sizeBytes: number;
  storedBytes: number;
  startLsn: string;
  stopLsn: string;
  timeline: number;
}

/** Loads a hash route afresh and waits for its heading. */
async function go(p: Page, hash: string, heading: RegExp): Promise<void> {
  await p.goto(`${url}/#${hash}`);
  await p.reload();
  await p.getByRole('heading', { level: 1, name: heading }).waitFor({ timeout: LONG });
}

/** Waits for the key section's answer to a change and returns it: the page's own words whether it
 * succeeded or not, so a failure shows what the console said (or that it was still pending). */
async function keyAnswer(p: Page): Promise<{ ok: boolean; text: string }> {
  const answer = p.locator('#key-result .status-ok, #key-result .status-error');
  try {
    await answer.first().waitFor({ timeout: LONG });
  } catch (err) {
    const shown = await p
      .locator('#key-result')
      .textContent()
      .catch(() => null);
    throw new Error(`the key section gave no answer in ${LONG} ms; it shows ${JSON.stringify(shown)}`, { cause: err });
  }
  const first = answer.first();
  return { ok: (await first.getAttribute('class'))!.includes('status-ok'), text: (await first.textContent())!.trim() };
}

const tab = `/servers/${SERVER}/encryption`;
const HEADING = new RegExp(`^Encryption and backups of ${SERVER}$`);

before(async () => {
  if (existsSync(HSM_MODULE)) {
    hsmDir = initSoftHsmToken(HSM_TOKEN, HSM_PIN);
  }
  // Customer keys are checked every second here, so a disabled key shows without a long wait.
  t = await startTestPlatform({ keyCheckIntervalMs: 1000, pkcs11Modules: SOFTHSM_MODULES });
  url = t.target.url.replace(/\/$/, '');
  await t.api('POST', '/servers', { name: SERVER, administratorLogin: 'ledgeradmin', administratorLoginPassword: PASSWORD });
  // Its own server for the customer key, so that the key's fate does not touch the backups.
  await t.api('POST', '/servers', { name: VAULT, administratorLogin: 'vaultadmin', administratorLoginPassword: PASSWORD });
  readerToken = (await t.api<{ token: string }>('POST', '/tokens', { role: 'Reader', name: 'e2e-reader' })).token;
  b = await launchBrowser();
  page = b.watch(b.context.pages()[0] ?? (await b.context.newPage()));
});

after(async () => {
  await b?.close();
  await t?.stop();
  if (hsmDir) rmSync(hsmDir, { recursive: true, force: true });
});

test('sign in, reach "Encryption and backups" from the server tabs by keyboard; the footer credits DB-IP with a plain link', async () => {
  await page.goto(`${url}/`);
  await page.getByLabel('API token').fill(t.target.token);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Servers' }).waitFor();
  await go(page, `/servers/${SERVER}`, new RegExp(`^Server ${SERVER}$`));
  await tabTo(page, `a[href="#/servers/${SERVER}/encryption"]`);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: HEADING }).waitFor({ timeout: LONG });
  assert.equal(await page.getByRole('link', { name: 'Encryption and backups' }).getAttribute('aria-current'), 'page');
  await page.getByText('No backups yet.').waitFor();

  const footer = page.locator('footer.site-footer');
  assert.equal((await footer.textContent())!.replace(/\s+/g, ' ').trim(), 'IP geolocation: DB-IP (CC BY 4.0)');
  assert.equal(await footer.getByRole('link', { name: 'DB-IP' }).getAttribute('href'), 'https://db-ip.com');
  // On the sign-in page too (it is outside the app's re-rendered part).
  const fresh = b.watch(await b.context.newPage());
  await fresh.goto(`${url}/`);
  await fresh.getByLabel('API token').waitFor();
  assert.equal(await fresh.locator('footer.site-footer a[href="https://db-ip.com"]').count(), 1);
  await fresh.close();
  await screenshot(page, 'encryption-empty');
});

test('key in use: system-managed key and volume backend as the API reports them, rotate with confirmation, revalidate (needs GET /servers/{name}/keys)', async () => {
  const probe = await t.apiStatus('GET', `/servers/${SERVER}/keys`);
  assert.equal(probe.status, 200, JSON.stringify(probe.body));
  const key = probe.body as KeyDoc;
  assert.equal(key.type, 'SystemManaged');
  await go(page, tab, HEADING);
  const facts = page.getByTestId('key-facts');
  const text = (await facts.textContent())!;
  assert.match(text, /Key typeSystem-managed/);
  assert.match(text, new RegExp(`KEK version${key.kekVersion}`));
  assert.match(text, /StatusValid/);
  assert.match(text, new RegExp(`every ${key.checkIntervalSeconds} s`));
  assert.match(text, key.volume.open ? /Volume openOpen/ : /Volume openClosed/);
  assert.match((await page.getByTestId('volume-backend').textContent())!, new RegExp(`^${key.volume.backend} \\(`));
  assert.equal(await page.getByTestId('inaccessible-banner').count(), 0);
  await screenshot(page, 'encryption-key');

  // Rotate: a confirmation (Escape cancels, nothing changes), then the new version.
  await tabToNamed(page, 'Rotate key');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  await page.keyboard.press('Escape');
  assert.equal((await t.api<KeyDoc>('GET', `/servers/${SERVER}/keys`)).kekVersion, key.kekVersion);
  await page.getByRole('button', { name: 'Rotate key' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Rotate key' }).click();
  assert.deepEqual(await keyAnswer(page), { ok: true, text: `Key rotated: KEK version ${key.kekVersion + 1} in use.` });
  assert.equal(await page.getByTestId('kek-version').textContent(), String(key.kekVersion + 1));
  assert.equal((await t.api<KeyDoc>('GET', `/servers/${SERVER}/keys`)).kekVersion, key.kekVersion + 1);

  await page.getByRole('button', { name: 'Revalidate now' }).click();
  await page.getByText(/^Key revalidated.*: Valid; the server is Ready\.$/).waitFor({ timeout: LONG });

  // A customer key the HSM cannot give: the API's refusal as it words it; the PIN is not kept.
  const body = { type: 'CustomerManaged', pkcs11Module: '/nonexistent/libpkcs11.so', tokenLabel: 'e2e', keyLabel: 'k1', pin: 'pin-e2e-1234' };
  const refused = await t.apiStatus('PUT', `/servers/${SERVER}/keys`, body);
  assert.notEqual(refused.status, 200, 'the API accepted a module that does not exist');
  const refusal = (refused.body as { error: { message: string } }).error.message;
  await page.getByLabel('PKCS#11 module').fill(body.pkcs11Module);
  await page.getByLabel('Token label').fill(body.tokenLabel);
  await page.getByLabel('Key label', { exact: true }).fill(body.keyLabel);
  await page.getByLabel('Token PIN').fill(body.pin);
  await page.getByRole('button', { name: 'Use this HSM key' }).click();
  await page.getByRole('alert').filter({ hasText: refusal }).waitFor({ timeout: LONG });
  assert.equal(await page.getByLabel('Token PIN').inputValue(), '');
  assert.equal((await t.api<KeyDoc>('GET', `/servers/${SERVER}/keys`)).type, 'SystemManaged');
  await screenshot(page, 'encryption-key-refused');
});

test('customer-managed key in SoftHSM2 from the console: switch to it, the key disabled in the token shows the Inaccessible banner, the refusal while disabled, revalidate once enabled', async () => {
  const probe = await t.apiStatus('GET', `/servers/${VAULT}/keys`);
  assert.ok(hsmDir, `${HSM_MODULE} is installed (scripts/install-deps.sh installs softhsm2)`);
  const before = probe.body as KeyDoc;
  await go(page, `/servers/${VAULT}/encryption`, /^Encryption and backups of vault$/);
  await page.getByLabel('PKCS#11 module').fill(SOFTHSM_MODULE_NAME);
  await page.getByLabel('Token label').fill(HSM_TOKEN);
  await page.getByLabel('Key label', { exact: true }).fill(HSM_KEY);
  await page.getByLabel('Token PIN').fill(HSM_PIN);
  await page.getByLabel('Create the key in the token if it does not exist (AES-256)').check();
  await page.getByRole('button', { name: 'Use this HSM key' }).click();
  assert.deepEqual(await keyAnswer(page), {
    ok: true,
    text: `Customer-managed key in use: '${HSM_KEY}' on token '${HSM_TOKEN}', KEK version ${before.kekVersion + 1}.`,
  });
  assert.equal(await page.getByLabel('Token PIN').inputValue(), '');
  const facts = (await page.getByTestId('key-facts').textContent())!;
  for (const part of ['Key typeCustomer-managed', `HSM module${SOFTHSM_MODULE_NAME}`, `Token${HSM_TOKEN}`, `Key label${HSM_KEY}`, 'StatusValid', 'every 1 s'])
    assert.ok(facts.includes(part), `${part} in ${facts}`);
  const stored = await page.evaluate(() => {
    const s: string[] = [];
    for (let i = 0; i < sessionStorage.length; i++) s.push(sessionStorage.getItem(sessionStorage.key(i)!) ?? '');
    return s.join('\n') + document.documentElement.outerHTML + String(localStorage.length);
  });
  assert.ok(!stored.includes(HSM_PIN), 'the PIN is nowhere in the page or its storage');
  await screenshot(page, 'encryption-hsm-key');

  // The HSM operator disables the key: the platform notices, the server turns Inaccessible.
  hsmKey('disable', HSM_KEY);
  let state = '';
  for (let i = 0; i < 300 && state !== 'Inaccessible'; i++) {
    state = (await t.api<{ state: string }>('GET', `/servers/${VAULT}`)).state;
    if (state !== 'Inaccessible') await page.waitForTimeout(100);
  }
  assert.equal(state, 'Inaccessible');
  // The state changes first (clients are refused at once); then the server stops and its volume locks.
  for (let i = 0; i < 300 && (await t.api<KeyDoc>('GET', `/servers/${VAULT}/keys`)).volume?.open !== false; i++) await page.waitForTimeout(100);
  await go(page, `/servers/${VAULT}/encryption`, /^Encryption and backups of vault$/);
  const banner = page.getByTestId('inaccessible-banner');
  assert.match((await banner.textContent())!, new RegExp(`^${INACCESSIBLE.replace(/\./g, '\\.')}`));
  assert.equal(await page.getByTestId('key-status').textContent(), 'Unavailable');
  assert.match((await page.getByTestId('key-facts').textContent())!, /Volume openClosed/);
  assert.equal(await page.getByRole('button', { name: 'Rotate key' }).count(), 0, 'no rotation while the key is out of reach');
  await screenshot(page, 'encryption-hsm-inaccessible');
  // Revalidate from the banner while the key is still disabled: the API's refusal as it words it.
  const refusal = await t.apiStatus('POST', `/servers/${VAULT}/keys/revalidate`, {});
  assert.equal(refusal.status, 409);
  const words = (refusal.body as { error: { message: string } }).error.message;
  assert.match(words, /^Server 'vault' stays Inaccessible: .*disabled for decryption/);
  await banner.getByRole('button', { name: 'Revalidate key' }).click();
  await page
    .getByRole('alert')
    .filter({ hasText: /^Server 'vault' stays Inaccessible: / })
    .waitFor({ timeout: LONG });
  // The key is enabled again: revalidate from the banner brings the server back.
  hsmKey('enable', HSM_KEY);
  await banner.getByRole('button', { name: 'Revalidate key' }).click();
  await page.getByText(/^Key revalidated.*: Valid; the server is Ready\.$/).waitFor({ timeout: LONG });
  assert.equal((await t.api<{ state: string }>('GET', `/servers/${VAULT}`)).state, 'Ready');
  assert.equal(await page.getByTestId('inaccessible-banner').count(), 0);
  await screenshot(page, 'encryption-hsm-revalidated');
});

test('"Back up now": progress from the operation, then the backup listed with its size and WAL range', async () => {
  await go(page, tab, HEADING);
  // Restoring needs a backup: the API's refusal, as it words it.
  await page.getByLabel('New server name').fill(COPY);
  await page.getByRole('button', { name: 'Restore to a new server' }).click();
  await page
    .getByRole('alert')
    .filter({ hasText: `Server '${SERVER}' has no backup yet: run 'pgwarden backup create --server ${SERVER}' first.` })
    .waitFor();

  const polls: string[] = [];
  page.on('request', (r) => {
    if (/\/operations\/[0-9a-f-]+$/.test(r.url())) polls.push(r.url());
  });
  await page.evaluate(() => {
    new MutationObserver((records) => {
      for (const r of records)
        for (const n of Array.from(r.addedNodes)) {
          if (n.matches?.('[data-testid="operation-progress"]') || n.querySelector?.('[data-testid="operation-progress"]')) window.sawProgress = true;
        }
    }).observe(document.body, { childList: true, subtree: true });
  });
  await tabToNamed(page, 'Back up now');
  await page.keyboard.press('Enter');
  const done = page.getByRole('status').filter({ hasText: /^Backup \S+ completed: / });
  await done.waitFor({ timeout: LONG });
  assert.equal(await page.evaluate(() => window.sawProgress), true, 'a progress bar was shown');
  assert.ok(polls.length >= 1, 'the page followed the operation');

  const list = (await t.api<{ value: BackupView[] }>('GET', `/servers/${SERVER}/backups`)).value;
  assert.equal(list.length, 1);
  const bk = list[0]!;
  assert.ok(bk.sizeBytes > 1_048_576 && bk.sizeBytes < 1_073_741_824, `size ${bk.sizeBytes}`);
  const mib = `${(bk.sizeBytes / 1_048_576).toFixed(1)} MiB`;
  assert.equal((await done.textContent())!.startsWith(`Backup ${bk.id} completed: ${mib} (`), true, (await done.textContent())!);
  const row = page.locator('#backup-list tbody tr', { hasText: bk.id });
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  assert.equal(cells[0], 'Full');
  assert.equal(cells[3], mib);
  assert.equal(cells[5], `${bk.startLsn} → ${bk.stopLsn} (timeline ${bk.timeline})`);
  assert.match(cells[1]!, /\d/);
  assert.match(cells[2]!, /\d/);
  assert.equal(await page.getByText('No backups yet.').count(), 0);
  await screenshot(page, 'encryption-backup');
});

test('restore to "latest" into a new server: name checked as you type, API refusals as worded, local time sent as UTC, progress until done, then the new server', async () => {
  await go(page, tab, HEADING);
  const name = page.getByLabel('New server name');
  await name.fill('Ledger_Copy');
  await page.getByText('3 to 63 characters of lowercase letters, digits and hyphens, not starting or ending with a hyphen.').waitFor();
  assert.equal(await name.getAttribute('aria-invalid'), 'true');
  await name.fill(SERVER);
  assert.equal(await name.getAttribute('aria-invalid'), 'false');
  await page.getByRole('button', { name: 'Restore to a new server' }).click();
  await page
    .getByRole('alert')
    .filter({ hasText: `A server named '${SERVER}' already exists.` })
    .waitFor();

  // A point in time typed in local time (India, UTC+05:30) is sent in UTC; before the first
  // backup, the operation fails with the API's message, which names that UTC time.
  const cdp = await b.context.newCDPSession(page);
  await cdp.send('Emulation.setTimezoneOverride', { timezoneId: 'Asia/Kolkata' });
  try {
    await page.getByRole('radio', { name: 'A point in time' }).check();
    const at = page.getByLabel('Point in time (your local time)');
    assert.equal(await at.isEnabled(), true);
    await at.fill('2020-01-01T12:00:00');
    const utc = page.getByTestId('restore-utc');
    let shown = '';
    for (let i = 0; i < 50 && !(shown = (await utc.textContent()) ?? '').includes('Sent as'); i++) await page.waitForTimeout(100);
    assert.match(shown, /^Time zone Asia\/(Kolkata|Calcutta), UTC\+05:30\. Sent as 2020-01-01T06:30:00\.000Z \(UTC\)\.$/);
    await at.fill(`${new Date().getFullYear() + 1}-06-01T12:00:00`);
    await page.getByText('The point in time is in the future.').waitFor();
    await at.fill('2020-01-01T12:00:00');
    await name.fill('ledger-2020');
    await page.getByRole('button', { name: 'Restore to a new server' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: /^No backup of server '[^']+' completed before 2020-01-01T06:30:00\.000Z\.$/ })
      .waitFor({ timeout: LONG });
  } finally {
    await cdp.send('Emulation.setTimezoneOverride', { timezoneId: '' });
    await cdp.detach();
  }
  const names = async () => (await t.api<{ value: { name: string }[] }>('GET', '/servers')).value.map((s) => s.name);
  assert.ok(!(await names()).includes('ledger-2020'), 'a failed restore leaves no server');

  // Latest, by keyboard: back to the default, a new name, Enter.
  await page.getByRole('radio', { name: 'Latest (everything archived so far)' }).check();
  assert.equal(await page.getByLabel('Point in time (your local time)').isEnabled(), false);
  await name.fill('');
  await name.focus();
  await page.keyboard.type(COPY);
  await page.keyboard.press('Enter');
  const done = page.getByTestId('restore-done');
  await done.waitFor({ timeout: LONG });
  assert.match(
    (await done.textContent())!,
    new RegExp(`^Server ${COPY} restored from ${SERVER} to the latest state; it is Ready\\. Like the reference service, it starts with no firewall rules\\.`),
  );
  await screenshot(page, 'encryption-restored');
  const copy = await t.api<{ state: string }>('GET', `/servers/${COPY}`);
  assert.equal(copy.state, 'Ready');
  assert.deepEqual((await t.api<{ value: unknown[] }>('GET', `/servers/${COPY}/firewallRules`)).value, []);

  await done.getByRole('link', { name: `Open server ${COPY}` }).click();
  await page.getByRole('heading', { level: 1, name: `Server ${COPY}` }).waitFor();
  await page.locator('.facts .state-ready').waitFor();
  await go(page, '/servers', /^Servers$/);
  assert.match((await page.locator('tbody tr', { hasText: COPY }).textContent())!, new RegExp(`${COPY}Ready`));
  await screenshot(page, 'encryption-servers-after-restore');
});

test('a Reader sees the key, the backups and no control; the API refuses a forged backup', async () => {
  const reader = b.watch(await b.context.newPage());
  await reader.goto(`${url}/`);
  await reader.getByLabel('API token').fill(readerToken);
  await reader.keyboard.press('Enter');
  await reader.getByRole('heading', { level: 1, name: 'Servers' }).waitFor();
  await go(reader, tab, HEADING);
  assert.equal(await reader.getByTestId('role-banner').textContent(), READ_ONLY);
  const list = (await t.api<{ value: BackupView[] }>('GET', `/servers/${SERVER}/backups`)).value;
  await reader.locator('#backup-list tbody tr', { hasText: list[0]!.id }).waitFor();
  const main = reader.locator('main');
  for (const sel of ['button', 'input', 'select', 'textarea', 'form']) assert.equal(await main.locator(sel).count(), 0, `a Reader sees a ${sel}`);
  const keys = await t.apiStatus('GET', `/servers/${SERVER}/keys`);
  if (keys.status === 200) await reader.getByTestId('key-facts').waitFor();
  else await reader.getByText(/^The key in use cannot be read: /).waitFor();
  await screenshot(reader, 'encryption-reader');

  const forged = await reader.evaluate(async (server) => {
    const res = await fetch(`/servers/${server}/backups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sessionStorage.getItem('pgwarden.token')}`, 'content-type': 'application/json' },
      body: '{}',
    });
    return { status: res.status, body: (await res.json()) as { error: { message: string } } };
  }, SERVER);
  assert.equal(forged.status, 403);
  assert.equal(forged.body.error.message, 'The Reader role is not allowed to perform this operation.');
  assert.equal((await t.api<{ value: unknown[] }>('GET', `/servers/${SERVER}/backups`)).value.length, 1);
  await reader.close();
});

test('1280×800 and a 480 px window: the tab fits without sideways scrolling', async () => {
  for (const [w, hgt, shot] of [
    [1280, 800, 'encryption-1280'],
    [480, 900, 'encryption-narrow'],
  ] as const) {
    await page.setViewportSize({ width: w, height: hgt });
    await go(page, tab, HEADING);
    await page.locator('#backup-list tbody tr').first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${w} px: scrolls sideways by ${overflow}px`);
    await screenshot(page, shot);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
});

test('no request left localhost, no CSP violation, no script error', () => {
  assert.deepEqual(b.external, []);
  assert.deepEqual(b.cspViolations, []);
  const unexpected = b.errors.filter((e) => !/Failed to load resource: the server responded with a status of (400|401|403|404|409)/.test(e));
  assert.deepEqual(unexpected, []);
});
