// The console's entry point: sign-in gate, layout (navigation, role banner), hash router and
// focus management so every page change is announced and reachable by keyboard.
import { ApiError, clearToken, getToken, whenUnauthenticated } from './api.js';
import { clear, h, status } from './dom.js';
import { loadSession, roleNotice, type Session } from './session.js';
import type { Page, PageContext } from './page.js';
import { renderSignIn } from './pages/signin.js';
import { serversPage } from './pages/servers.js';
import { serverPage } from './pages/server.js';
import { networkPage } from './pages/network.js';
import { identityPage } from './pages/identity.js';
import { threatPage } from './pages/threat.js';
import { alertsPage } from './pages/alerts.js';
import { auditPage } from './pages/audit.js';
import { encryptionPage } from './pages/encryption.js';

/** Routes in order; the first whose pattern matches the hash path wins. */
const ROUTES: readonly { pattern: RegExp; keys: readonly string[]; page: Page }[] = [
  { pattern: /^\/servers$/, keys: [], page: serversPage },
  { pattern: /^\/servers\/([^/]+)$/, keys: ['name'], page: serverPage },
  { pattern: /^\/servers\/([^/]+)\/network$/, keys: ['name'], page: networkPage },
  { pattern: /^\/servers\/([^/]+)\/identity$/, keys: ['name'], page: identityPage },
  { pattern: /^\/servers\/([^/]+)\/threat$/, keys: ['name'], page: threatPage },
  { pattern: /^\/servers\/([^/]+)\/threat\/alerts\/([^/]+)$/, keys: ['name', 'alert'], page: threatPage },
  { pattern: /^\/servers\/([^/]+)\/encryption$/, keys: ['name'], page: encryptionPage },
  { pattern: /^\/alerts$/, keys: [], page: alertsPage },
  { pattern: /^\/audit$/, keys: [], page: auditPage },
];

const NAV: readonly { href: string; label: string; prefix: string }[] = [
  { href: '#/servers', label: 'Servers', prefix: '/servers' },
  { href: '#/alerts', label: 'Alerts', prefix: '/alerts' },
  { href: '#/audit', label: 'Audit', prefix: '/audit' },
];

const app = document.getElementById('app')!;
let session: Session | null = null;
let renderCount = 0;

function currentPath(): string {
  const raw = location.hash.replace(/^#/, '') || '/servers';
  return raw.split('?')[0]!;
}

function navigate(path: string): void {
  if (currentPath() === path) void render(true);
  else location.hash = `#${path}`;
}

function signOut(): void {
  clearToken();
  session = null;
  void render(true);
}

whenUnauthenticated(() => {
  if (session) signOut();
});

function layout(s: Session, path: string, main: HTMLElement): HTMLElement {
  const nav = h(
    'nav',
    { 'aria-label': 'Main' },
    h('ul', {}, ...NAV.map((n) => h('li', {}, h('a', { href: n.href, 'aria-current': path.startsWith(n.prefix) ? 'page' : null }, n.label)))),
  );
  const who = h(
    'div',
    { class: 'who' },
    h('span', { class: 'who-name' }, `${s.me.name} · `, h('strong', { 'data-testid': 'role' }, s.me.role)),
    h('button', { type: 'button', class: 'secondary', onclick: signOut }, 'Sign out'),
  );
  const notice = roleNotice(s);
  const banner = notice ? h('div', { class: s.readOnly ? 'banner banner-readonly' : 'banner', role: 'note', 'data-testid': 'role-banner' }, notice) : null;
  return h(
    'div',
    { class: 'shell' },
    h('a', { class: 'skip', href: '#main' }, 'Skip to content'),
    h('header', { class: 'top' }, h('a', { class: 'brand', href: '#/servers' }, 'pgwarden'), nav, who),
    banner,
    main,
  );
}

/** Renders the page of the current hash; `focus` moves focus to its heading (navigation). */
async function render(focus: boolean): Promise<void> {
  const mine = ++renderCount;
  if (!getToken()) {
    session = null;
    clear(app);
    app.appendChild(
      renderSignIn(async () => {
        await startSession();
      }),
    );
    document.title = 'Sign in · pgwarden';
    return;
  }
  if (!session) {
    try {
      session = await loadSession();
    } catch (err) {
      clearToken();
      clear(app);
      const why = err instanceof ApiError ? err.message : String(err);
      app.appendChild(renderSignIn(async () => startSession(), why));
      return;
    }
  }
  const path = currentPath();
  const route = ROUTES.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  const main = h('main', { id: 'main', tabindex: '-1' });
  clear(app);
  app.appendChild(layout(session, path, main));
  if (!route) {
    main.appendChild(h('h1', {}, 'Not found'));
    main.appendChild(h('p', {}, 'There is no page at this address. ', h('a', { href: '#/servers' }, 'Go to the servers.')));
    return;
  }
  const params: Record<string, string> = {};
  route.r.keys.forEach((k, i) => {
    params[k] = decodeURIComponent(route.m![i + 1]!);
  });
  document.title = `${route.r.page.title(params)} · pgwarden`;
  main.appendChild(status('pending', 'Loading…'));
  const ctx: PageContext = { session, params, navigate, refresh: () => void render(false) };
  let content: Node;
  try {
    content = await route.r.page.render(ctx);
  } catch (err) {
    content = h('div', {}, h('h1', {}, route.r.page.title(params)), status('error', err instanceof Error ? err.message : String(err)));
  }
  if (mine !== renderCount) return; // a newer navigation won
  clear(main);
  main.appendChild(content);
  const heading = main.querySelector('h1');
  if (heading && focus) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
}

async function startSession(): Promise<void> {
  session = await loadSession();
  if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/servers';
  await render(true);
}

window.addEventListener('hashchange', () => void render(true));
void render(false);
