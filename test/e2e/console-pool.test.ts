// Connection pooling in the web console, in real Chromium against a real platform: the server page
// shows the pool mode and size and the pools; an Owner changes them (a bad size is refused before
// any call), the API then has them; a Reader sees them with no control to change them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { launchBrowser, screenshot, type Watched } from './browser.js';

const SERVER = 'pooled';
const LONG = 60_000;

let t: TestPlatform;
let b: Watched;
let url: string;

const validate = (await import(pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/validate.js')).href)) as {
  poolSizeProblem(text: string): string | null;
};

before(async () => {
  t = await startTestPlatform();
  url = t.target.url.replace(/\/$/, '');
  await t.api('POST', '/servers', { name: SERVER, administratorLogin: 'pooladmin', administratorLoginPassword: 'P00led-Passw0rd!' });
  b = await launchBrowser();
});

after(async () => {
  await b?.close();
  await t?.stop();
});

async function signIn(token: string): Promise<Page> {
  const page = b.watch(await b.context.newPage()); // a new tab: its own sessionStorage
  await page.goto(`${url}/`);
  await page.getByLabel('API token').fill(token);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Servers' }).waitFor({ timeout: LONG });
  await page.goto(`${url}/#/servers/${SERVER}`);
  await page.reload();
  await page.getByRole('heading', { level: 1, name: `Server ${SERVER}` }).waitFor({ timeout: LONG });
  return page;
}

test('the console checks a pool size as the API does', () => {
  for (const ok of ['1', '20', '10000']) assert.equal(validate.poolSizeProblem(ok), null, ok);
  for (const bad of ['0', '-1', 'abc', '10001', '1.5', '']) {
    assert.equal(validate.poolSizeProblem(bad), 'The pool size must be a whole number from 1 to 10000.', bad);
  }
});

test('an Owner sees the pool settings and pools, and changes the mode and size', async () => {
  const page = await signIn(t.target.token);
  const section = page.getByRole('region', { name: 'Connection pooling' });
  await section.getByText('No pooling: one server connection per client session. Pool size: 20 server connections per role and database.').waitFor();
  await section.getByText('No pools: no client has connected through a pool since the gateway started.').waitFor();

  await section.getByLabel('Pool mode').selectOption('transaction');
  await section.getByLabel('Pool size').fill('0');
  await section.getByRole('button', { name: 'Save pool settings' }).click();
  await section.getByText('The pool size must be a whole number from 1 to 10000.').waitFor();
  const unchanged = await t.api<{ poolMode: string; poolSize: number }>('GET', `/servers/${SERVER}`);
  assert.deepEqual([unchanged.poolMode, unchanged.poolSize], ['none', 20]);

  await section.getByLabel('Pool size').fill('8');
  await section.getByRole('button', { name: 'Save pool settings' }).click();
  await section
    .getByText('Transaction: a server connection is lent for one transaction at a time. Pool size: 8 server connections per role and database.')
    .waitFor();
  const s = await t.api<{ poolMode: string; poolSize: number }>('GET', `/servers/${SERVER}`);
  assert.deepEqual([s.poolMode, s.poolSize], ['transaction', 8]);
  await section.getByRole('button', { name: 'Refresh pools' }).click();
  await section.getByText('No pools: no client has connected through a pool since the gateway started.').waitFor();
  await screenshot(page, 'server-pool-owner');

  // After a reload the overview says so too.
  await page.reload();
  await page.getByText('transaction, 8 per role and database').waitFor({ timeout: LONG });
  await page.close();
});

test('a Reader sees the pool settings and pools with no control to change them', async () => {
  const reader = (await t.api<{ token: string }>('POST', '/tokens', { role: 'Reader', name: 'pool-reader' })).token;
  const page = await signIn(reader);
  const section = page.getByRole('region', { name: 'Connection pooling' });
  await section.getByText(/^Transaction: .* Pool size: 8 server connections per role and database\.$/).waitFor();
  assert.equal(await section.getByRole('button', { name: 'Save pool settings' }).count(), 0);
  assert.equal(await section.getByLabel('Pool mode').count(), 0);
  assert.equal(await section.getByRole('button', { name: 'Refresh pools' }).count(), 1);
  await screenshot(page, 'server-pool-reader');
  await page.close();
});

test('no request left localhost, no CSP violation, no script error', () => {
  assert.deepEqual(b.external, []);
  assert.deepEqual(b.cspViolations, []);
  assert.deepEqual(b.errors, []);
});
