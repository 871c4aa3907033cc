// The private endpoint connections of one server, with approve / reject.
import { api } from '../api.js';
import { confirmDialog, h, resultSlot, table, time } from '../dom.js';
import type { PageContext } from '../page.js';
import type { PrivateEndpoint } from '../types.js';
import { change } from './network-change.js';

export function endpointSection(ctx: PageContext, base: string, endpoints: PrivateEndpoint[]): HTMLElement {
  const result = resultSlot('endpoint-result');
  const canEdit = ctx.session.canSecure;
  const decide = (c: PrivateEndpoint, verb: 'approve' | 'reject') =>
    change(
      result,
      `Private endpoint ${c.name} ${verb === 'approve' ? 'approved' : 'rejected'}`,
      () => api('POST', `${base}/privateEndpointConnections/${encodeURIComponent(c.name)}/${verb}`, {}),
      ctx.refresh,
    );
  const actions = (c: PrivateEndpoint) =>
    h(
      'div',
      { class: 'row-actions' },
      c.status !== 'Approved'
        ? h('button', { type: 'button', 'aria-label': `Approve private endpoint ${c.name}`, onclick: () => void decide(c, 'approve') }, 'Approve')
        : null,
      c.status !== 'Rejected'
        ? h(
            'button',
            {
              type: 'button',
              class: 'secondary',
              'aria-label': `Reject private endpoint ${c.name}`,
              onclick: async () => {
                if (await confirmDialog(`Reject ${c.name}?`, 'Connections through this endpoint will be refused.', 'Reject')) await decide(c, 'reject');
              },
            },
            'Reject',
          )
        : null,
    );
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'pe-title' },
    h('h2', { id: 'pe-title' }, 'Private endpoint connections'),
    h('p', { class: 'hint' }, 'An endpoint appears as Pending the first time a load balancer brings a connection through it.'),
    table<PrivateEndpoint>(
      'Private endpoint connections',
      [
        { label: 'Endpoint', cell: (c) => c.privateEndpoint.id },
        { label: 'Kind', cell: (c) => c.privateEndpoint.kind },
        { label: 'Status', cell: (c) => h('span', { class: `state state-${c.status.toLowerCase()}` }, c.status) },
        { label: 'Description', cell: (c) => c.description || '—' },
        { label: 'Changed', cell: (c) => time(c.updatedAt) },
        ...(canEdit ? [{ label: 'Actions', cell: actions }] : []),
      ],
      endpoints,
      'No private endpoint connections.',
    ),
    result,
  );
}
