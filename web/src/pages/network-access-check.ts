// The access check: explains the gateway's decision for an address on a listener.
import { get, query } from '../api.js';
import { field, h, select, status } from '../dom.js';
import type { AccessAnswer, VirtualNetwork } from '../types.js';
import { ipFamily } from '../validate.js';

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function accessCheckSection(base: string, vnets: VirtualNetwork[]): HTMLElement {
  const ip = h('input', { name: 'ip', autocomplete: 'off', required: true });
  const listener = select('listener', ['public', 'private-link', ...vnets.map((v) => v.name)], 'public');
  const endpoint = h('input', { name: 'endpoint', autocomplete: 'off' });
  const user = h('input', { name: 'user', autocomplete: 'off' });
  const database = h('input', { name: 'database', autocomplete: 'off' });
  const ssl = select('ssl', ['true', 'false'], 'true');
  const result = h('div', { class: 'result', 'aria-live': 'polite', id: 'access-result' });
  const fIp = field('Client address', ip);
  const form = h(
    'form',
    { class: 'card', novalidate: true, 'aria-labelledby': 'ac-title' },
    h('h2', { id: 'ac-title' }, 'Access check'),
    h('p', { class: 'hint' }, 'What the gateway would decide for a connection from this address, and why.'),
    h(
      'div',
      { class: 'grid' },
      fIp.row,
      field('Listener', listener).row,
      field('Private endpoint id', endpoint, 'Only for private-link.').row,
      field('User', user).row,
      field('Database', database).row,
      field('TLS', ssl).row,
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Check access')),
    result,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (ipFamily(ip.value.trim()) === null) {
      fIp.message.textContent = 'Not an IPv4 or IPv6 address.';
      ip.focus();
      return;
    }
    fIp.message.textContent = '';
    try {
      const a = await get<AccessAnswer>(
        `${base}/accessCheck${query({ ip: ip.value.trim(), listener: listener.value, endpoint: endpoint.value, user: user.value, database: database.value, ssl: ssl.value })}`,
      );
      result.replaceChildren(
        status(a.allow ? 'ok' : 'error', `${a.allow ? 'Allowed' : 'Refused'}: ${a.explanation ?? a.reason}`),
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'Reason code'),
          h('dd', {}, a.reason),
          a.rule ? h('dt', {}, 'Rule') : null,
          a.rule ? h('dd', {}, a.rule) : null,
          a.subnet ? h('dt', {}, 'Subnet') : null,
          a.subnet ? h('dd', {}, a.subnet) : null,
          a.error ? h('dt', {}, 'Client would see') : null,
          a.error ? h('dd', {}, h('code', {}, `${a.error.sqlstate} ${a.error.message}`)) : null,
        ),
      );
    } catch (err) {
      result.replaceChildren(status('error', message(err)));
    }
  });
  return form;
}
