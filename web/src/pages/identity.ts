// Identity of one server: the token-login administrator (at most one; removing it disables
// every token login) and the principals mapped to database roles.
import { api, ApiError, get } from '../api.js';
import { carryOver, confirmDialog, field, h, resultSlot, select, status, table, time } from '../dom.js';
import { showWhenLive } from '../live.js';
import type { Page, PageContext } from '../page.js';
import { serverHeader } from '../server-nav.js';

interface IdentityAdmin {
  issuer: string;
  audience: string;
  login: string;
  objectId: string;
  type: string;
  objectIdClaim: string;
  customCa: boolean;
  updatedAt: string;
}

interface Principal {
  role: string;
  objectId: string;
  type: string;
  createdAt: string;
}

const TYPES = ['user', 'group', 'servicePrincipal'];
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function change(slot: HTMLElement, what: string, fn: () => Promise<unknown>, after: () => void): Promise<void> {
  const t0 = Date.now();
  slot.replaceChildren(status('pending', `${what}: saving…`));
  try {
    await fn();
  } catch (err) {
    slot.replaceChildren(status('error', message(err)));
    return;
  }
  const live = carryOver(slot);
  after();
  await showWhenLive(live, what, t0);
}

export const identityPage: Page = {
  title: (p) => `Identity · ${p.name}`,
  async render(ctx) {
    const name = ctx.params.name!;
    const base = `/servers/${encodeURIComponent(name)}`;
    const [admin, principals] = await Promise.all([
      get<IdentityAdmin>(`${base}/administrators/identity`).catch((err) => {
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      }),
      get<{ value: Principal[] }>(`${base}/identityPrincipals`),
    ]);
    return h('div', {}, serverHeader(name, '/identity', `Identity of ${name}`), adminSection(ctx, base, admin), principalSection(ctx, base, principals.value));
  },
};

function adminSection(ctx: PageContext, base: string, admin: IdentityAdmin | null): HTMLElement {
  const result = resultSlot('admin-result');
  const section = h('section', { class: 'card', 'aria-labelledby': 'admin-title' }, h('h2', { id: 'admin-title' }, 'Identity administrator'));
  if (admin) {
    section.append(
      h(
        'dl',
        { class: 'facts' },
        ...(
          [
            ['Login', admin.login],
            ['Type', admin.type],
            ['Issuer', admin.issuer],
            ['Audience', admin.audience],
            ['Object id', admin.objectId],
            ['Object id claim', admin.objectIdClaim],
            ['Private CA', admin.customCa ? 'Yes' : 'No'],
            ['Changed', time(admin.updatedAt)],
          ] as const
        ).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
      ),
    );
  } else {
    section.append(h('p', {}, 'No identity administrator: token login is disabled on this server.'));
  }
  if (!ctx.session.canIdentity) return h('div', {}, section);
  const issuer = h('input', { name: 'issuer', value: admin?.issuer ?? '', autocomplete: 'off', placeholder: 'https://login.example.com/tenant/v2.0' });
  const audience = h('input', { name: 'audience', value: admin?.audience ?? '', autocomplete: 'off' });
  const login = h('input', { name: 'login', value: admin?.login ?? '', autocomplete: 'off' });
  const objectId = h('input', { name: 'objectId', value: admin?.objectId ?? '', autocomplete: 'off' });
  const type = select('type', TYPES, admin?.type ?? 'user');
  const claim = select('objectIdClaim', ['oid', 'sub'], admin?.objectIdClaim ?? 'oid');
  const form = h(
    'form',
    { class: 'subform', novalidate: true, 'aria-labelledby': 'admin-set-title' },
    h('h3', { id: 'admin-set-title' }, admin ? 'Change the administrator' : 'Set the administrator'),
    h(
      'div',
      { class: 'grid' },
      field('Issuer', issuer).row,
      field('Audience', audience).row,
      field('Login (database role)', login).row,
      field('Object id', objectId).row,
      field('Type', type).row,
      field('Object id claim', claim).row,
    ),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit' }, 'Save administrator'),
      admin
        ? h(
            'button',
            {
              type: 'button',
              class: 'danger',
              onclick: async () => {
                if (
                  await confirmDialog(
                    'Remove the identity administrator?',
                    'Every token login on this server stops working until an administrator is set again.',
                    'Remove',
                  )
                ) {
                  await change(result, 'Identity administrator removed', () => api('DELETE', `${base}/administrators/identity`), ctx.refresh);
                }
              },
            },
            'Remove administrator',
          )
        : null,
    ),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void change(
      result,
      'Identity administrator',
      () =>
        api('PUT', `${base}/administrators/identity`, {
          issuer: issuer.value.trim(),
          audience: audience.value.trim(),
          login: login.value.trim(),
          objectId: objectId.value.trim(),
          type: type.value,
          objectIdClaim: claim.value,
        }),
      ctx.refresh,
    );
  });
  section.append(form, result);
  return section;
}

function principalSection(ctx: PageContext, base: string, principals: Principal[]): HTMLElement {
  const result = resultSlot('principal-result');
  const canEdit = ctx.session.canIdentity;
  const section = h(
    'section',
    { class: 'card', 'aria-labelledby': 'principals-title' },
    h('h2', { id: 'principals-title' }, 'Principals'),
    table<Principal>(
      'Principals mapped to database roles',
      [
        { label: 'Database role', cell: (p) => p.role },
        { label: 'Object id', cell: (p) => p.objectId },
        { label: 'Type', cell: (p) => p.type },
        { label: 'Added', cell: (p) => time(p.createdAt) },
        ...(canEdit
          ? [
              {
                label: 'Actions',
                cell: (p: Principal) =>
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'danger',
                      'aria-label': `Remove principal ${p.role}`,
                      onclick: async () => {
                        if (await confirmDialog(`Remove principal ${p.role}?`, `${p.objectId} will no longer log in as ${p.role} with a token.`, 'Remove')) {
                          await change(
                            result,
                            `Principal ${p.role} removed`,
                            () => api('DELETE', `${base}/identityPrincipals/${encodeURIComponent(p.role)}`),
                            ctx.refresh,
                          );
                        }
                      },
                    },
                    'Remove',
                  ),
              },
            ]
          : []),
      ],
      principals,
      'No principals.',
    ),
  );
  if (canEdit) {
    const role = h('input', { name: 'role', autocomplete: 'off' });
    const objectId = h('input', { name: 'principalObjectId', autocomplete: 'off' });
    const type = select('principalType', TYPES, 'user');
    const form = h(
      'form',
      { class: 'subform', novalidate: true, 'aria-labelledby': 'principal-add-title' },
      h('h3', { id: 'principal-add-title' }, 'Add a principal'),
      h('div', { class: 'grid' }, field('Database role', role).row, field('Object id', objectId).row, field('Type', type).row),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add principal')),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void change(
        result,
        `Principal ${role.value}`,
        () => api('POST', `${base}/identityPrincipals`, { role: role.value.trim(), objectId: objectId.value.trim(), type: type.value }),
        ctx.refresh,
      );
    });
    section.append(form);
  }
  section.append(result);
  return section;
}
