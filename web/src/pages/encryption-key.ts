// The key in use of one server: its facts (type, HSM key, KEK version, validation, volume), the
// Inaccessible banner, rotate and revalidate; the forms that change the key are in
// encryption-key-forms.ts.
import { api, ApiError, get } from '../api.js';
import { append, bytes, confirmDialog, field, h, status, time } from '../dom.js';
import type { PageContext } from '../page.js';
import type { KeyInUse, Server } from '../types.js';
import { customerKeyForm, systemKeyForm } from './encryption-key-forms.js';

/** The client error of SPEC.md §4, shown as it is when the key cannot be reached. */
export const INACCESSIBLE = 'Server is inaccessible: its encryption key cannot be accessed.';

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Who may rotate, revalidate or change the key: the roles that manage servers (as for backups,
 * src/control/rbac.ts MANAGE); the API stays the authority and its refusal is shown as it is. */
const canChangeKey = (ctx: PageContext) => ctx.session.canManage;

function backendLabel(backend: string): string {
  if (backend === 'fscrypt') return 'fscrypt (kernel ext4 encryption, AES-256-XTS)';
  if (backend === 'gocryptfs') return 'gocryptfs (FUSE, AES-256-GCM)';
  return backend;
}

function ago(iso: string | null): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (Number.isNaN(s)) return '';
  return s < 90 ? ` (${s} s ago)` : s < 5400 ? ` (${Math.round(s / 60)} min ago)` : ` (${Math.round(s / 3600)} h ago)`;
}

function keyFacts(s: Server, k: KeyInUse): HTMLElement {
  const rows: [string, Node | string][] = [
    ['Server state', h('span', { class: `state state-${s.state.toLowerCase()}`, 'data-testid': 'server-state' }, s.state)],
    ['Key type', k.type === 'CustomerManaged' ? 'Customer-managed (HSM key through PKCS#11)' : 'System-managed (derived from the platform root key)'],
  ];
  if (k.pkcs11) {
    rows.push(['HSM module', h('code', {}, k.pkcs11.module)], ['Token', k.pkcs11.tokenLabel], ['Key label', k.pkcs11.keyLabel]);
    if (k.pkcs11.keyId) rows.push(['Key id', h('code', {}, k.pkcs11.keyId)]);
  }
  rows.push(
    ['Key reference', h('code', {}, k.keyRef)],
    ['KEK version', h('span', { 'data-testid': 'kek-version' }, String(k.kekVersion))],
    [
      'Status',
      h('span', {}, h('span', { class: `state state-${k.status.toLowerCase()}`, 'data-testid': 'key-status' }, k.status), k.reason ? ` ${k.reason}` : null),
    ],
    ['Last validated', k.lastValidatedAt ? `${time(k.lastValidatedAt)}${ago(k.lastValidatedAt)}` : 'never'],
    ['Checked', `every ${k.checkIntervalSeconds} s`],
  );
  if (k.volume) {
    rows.push(
      ['Volume', h('span', { 'data-testid': 'volume-backend' }, backendLabel(k.volume.backend))],
      ['Volume size', bytes(k.volume.sizeBytes)],
      ['Volume open', k.volume.open ? 'Open: its key is loaded while the server runs' : 'Closed: its key is not in memory'],
    );
  } else {
    rows.push(['Volume', 'No encrypted volume is recorded for this server.']);
  }
  return h('dl', { class: 'facts', 'data-testid': 'key-facts' }, ...rows.flatMap(([dt, dd]) => [h('dt', {}, dt), h('dd', {}, dd)]));
}

export function keySection(ctx: PageContext, base: string, server0: Server, key0: KeyInUse | ApiError, banner: HTMLElement): HTMLElement {
  const name = server0.name;
  const body = h('div', {});
  const result = h('div', { class: 'result', id: 'key-result' });
  let busy = false;

  /** Runs a key change; the answer (the key document) repaints the section. */
  const act = async (what: string, fn: () => Promise<KeyInUse>, done: (k: KeyInUse, s: Server) => string) => {
    if (busy) return;
    busy = true;
    result.replaceChildren(status('pending', `${what}…`));
    try {
      const k = await fn();
      const s = await get<Server>(base).catch(() => server0);
      paint(s, k);
      const line = status('ok', done(k, s));
      line.setAttribute('tabindex', '-1');
      result.replaceChildren(line);
      line.focus();
    } catch (err) {
      result.replaceChildren(status('error', message(err)));
    } finally {
      busy = false;
    }
  };

  const revalidate = (primary: boolean, label: string) =>
    h(
      'button',
      {
        type: 'button',
        class: primary ? null : 'secondary',
        onclick: () =>
          void act(
            'Revalidating the key',
            () => api<KeyInUse>('POST', `${base}/keys/revalidate`, {}),
            (k, s) => `Key revalidated${k.lastValidatedAt ? ` at ${time(k.lastValidatedAt)}` : ''}: ${k.status}; the server is ${s.state}.`,
          ),
      },
      label,
    );

  const paint = (s: Server, k: KeyInUse | ApiError) => {
    const inaccessible = s.state === 'Inaccessible';
    const canEdit = canChangeKey(ctx);
    banner.replaceChildren(
      inaccessible
        ? h(
            'div',
            { class: 'status status-error key-banner', role: 'alert', 'data-testid': 'inaccessible-banner' },
            h('p', {}, h('strong', {}, INACCESSIBLE)),
            h(
              'p',
              {},
              'Clients are refused with this error and the server is stopped; nothing is lost. Bring the key back in the HSM (or enable it again), then revalidate.',
            ),
            canEdit ? h('div', { class: 'actions' }, revalidate(true, 'Revalidate key')) : null,
          )
        : '',
    );
    if (k instanceof ApiError) {
      body.replaceChildren(status('error', `The key in use cannot be read: ${k.message}`));
      return;
    }
    body.replaceChildren(keyFacts(s, k));
    if (!canEdit) return;
    if (inaccessible) {
      // The API refuses to rotate or change a key it cannot reach: revalidating comes first.
      body.append(h('p', { class: 'hint' }, 'Rotating or changing the key needs the key back: revalidate first.'));
      return;
    }
    const valid = k.status === 'Valid' && !inaccessible;
    const newLabel = h('input', { name: 'rotateKeyLabel', autocomplete: 'off', maxlength: '128' });
    const rotate = h(
      'button',
      {
        type: 'button',
        class: valid ? null : 'secondary',
        onclick: async () => {
          const label = newLabel.value.trim();
          const target = label ? ` under the HSM key '${label}'` : '';
          if (
            !(await confirmDialog(
              `Rotate the key of ${name}?`,
              `The volume's data key is re-wrapped under KEK version ${k.kekVersion + 1}${target}. No data is re-encrypted and the server stays online.`,
              'Rotate key',
            ))
          )
            return;
          await act(
            'Rotating the key',
            () => api<KeyInUse>('POST', `${base}/keys/rotate`, label ? { keyLabel: label } : {}),
            (r) => `Key rotated: KEK version ${r.kekVersion} in use${r.pkcs11 ? ` (HSM key '${r.pkcs11.keyLabel}')` : ''}.`,
          );
        },
      },
      'Rotate key',
    );
    append(
      body,
      k.pkcs11
        ? h(
            'div',
            { class: 'narrow-field' },
            field('New HSM key label for the rotation', newLabel, 'Optional: empty keeps the same HSM key and adds a version.').row,
          )
        : null,
      // When the key is unavailable, revalidating is the way back: it comes first and primary.
      h('div', { class: 'actions' }, ...(valid ? [rotate, revalidate(false, 'Revalidate now')] : [revalidate(true, 'Revalidate now'), rotate])),
      customerKeyForm(name, base, k, act),
      k.type === 'CustomerManaged' ? systemKeyForm(name, base, act) : null,
    );
  };
  paint(server0, key0);
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'key-title' },
    h('h2', { id: 'key-title' }, 'Key in use'),
    h(
      'p',
      { class: 'hint' },
      "Storage encryption is always on and cannot be turned off. The server's data directory, WAL and temporary files are on an encrypted volume whose data key is wrapped by this key-encryption key (KEK).",
    ),
    body,
    result,
  );
}
