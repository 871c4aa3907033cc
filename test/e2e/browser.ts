// Real Chromium for end-to-end tests: Debian's /usr/bin/chromium driven by playwright-core, an
// empty profile, no background traffic; it records what a test must not see: requests to other
// hosts, console errors, CSP violations, uncaught page errors.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const ARTIFACTS = path.resolve('test-artifacts', 'console');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Watched {
  readonly context: BrowserContext;
  /** Requests to any host but loopback (none allowed). */
  readonly external: string[];
  /** Console errors and page errors, with the page's URL. */
  readonly errors: string[];
  /** Content-Security-Policy violations reported by the page. */
  readonly cspViolations: string[];
  watch(page: Page): Page;
  close(): Promise<void>;
}

// The one browser global used in a page function (the root tsconfig has no DOM lib).
declare const document: { activeElement: { matches(selector: string): boolean } | null };

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export async function launchBrowser(): Promise<Watched> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const profile = mkdtempSync('/tmp/pgw-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    // The API's certificate is signed by the platform's own CA, which this empty profile does
    // not hold; trusting it would need NSS tools in the profile. TLS itself is still used.
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
  });
  const external: string[] = [];
  const errors: string[] = [];
  const cspViolations: string[] = [];
  context.on('request', (r) => {
    const u = new URL(r.url());
    if ((u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'ws:' || u.protocol === 'wss:') && !LOOPBACK.has(u.hostname))
      external.push(r.url());
  });
  await context.exposeBinding('__reportCsp', (_source, text: string) => {
    cspViolations.push(text);
  });
  await context.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) => {
      window.__reportCsp(e.violatedDirective + ' blocked ' + e.blockedURI + ' at ' + e.sourceFile + ':' + e.lineNumber);
    });`,
  });
  const watch = (page: Page): Page => {
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    return page;
  };
  for (const p of context.pages()) watch(p);
  return {
    context,
    external,
    errors,
    cspViolations,
    watch,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot under test-artifacts/console/. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Presses Tab until `selector` has focus (at most `max` times): proof it is reachable by keyboard. */
export async function tabTo(page: Page, selector: string, max = 80): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`${selector} was not reached with ${max} Tab presses`);
}

// Read in a page function: the focused element's accessible text.
declare const window: { document: { activeElement: { textContent: string | null; getAttribute(n: string): string | null } | null } };

/** Presses Tab until the focused element's aria-label or text is `name` (at most `max` times). */
export async function tabToNamed(page: Page, name: string, max = 80): Promise<void> {
  for (let i = 0; i < max; i++) {
    const focused = await page.evaluate(() => {
      const el = window.document.activeElement;
      return el ? (el.getAttribute('aria-label') ?? el.textContent ?? '').trim() : '';
    });
    if (focused === name) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`"${name}" was not reached with ${max} Tab presses`);
}
