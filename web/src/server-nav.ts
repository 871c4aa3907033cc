// The heading and sub-navigation every page of one server shares.
import { h } from './dom.js';

const TABS = [
  { path: '', label: 'Overview' },
  { path: '/network', label: 'Connection security' },
  { path: '/identity', label: 'Identity' },
  { path: '/threat', label: 'Threat protection' },
  { path: '/encryption', label: 'Encryption and backups' },
] as const;

export type ServerTab = (typeof TABS)[number]['path'];

export function serverHeader(name: string, current: ServerTab, title: string): HTMLElement {
  const base = `#/servers/${encodeURIComponent(name)}`;
  return h(
    'div',
    { class: 'page-head' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/servers' }, 'Servers'), ' / ', name),
    h('h1', {}, title),
    h(
      'nav',
      { 'aria-label': `Server ${name}`, class: 'tabs' },
      h('ul', {}, ...TABS.map((t) => h('li', {}, h('a', { href: base + t.path, 'aria-current': t.path === current ? 'page' : null }, t.label)))),
    ),
  );
}
