// A server's parameters on its page: the allow-listed ones with their value, default, whether
// they apply with a reload or a restart, and a pending restart; Owner and Contributor set one
// (with a restart when it needs one and they ask for it). A Reader sees the table only.
import { api } from '../api.js';
import { field, h, select, status, table } from '../dom.js';
import type { PageContext } from '../page.js';

export interface Configuration {
  name: string;
  value: string;
  defaultValue: string;
  source: string;
  dataType: string;
  allowedValues: string;
  unit: string | null;
  isDynamic: boolean;
  pendingRestart: boolean;
  description: string;
}

/** Lists shown with a space after each comma, so a long one wraps. */
const wrap = (v: string) => v.replace(/,(?! )/g, ', ');

export function parametersSection(ctx: PageContext, base: string, list: readonly Configuration[]): HTMLElement {
  const section = h(
    'section',
    { class: 'card', 'aria-labelledby': 'params-title' },
    h('h2', { id: 'params-title' }, 'Server parameters'),
    table<Configuration>(
      'Server parameters',
      [
        { label: 'Parameter', cell: (c) => h('span', { title: c.description }, c.name) },
        { label: 'Value', cell: (c) => wrap(c.value) || '(none)' },
        { label: 'Default', cell: (c) => wrap(c.defaultValue) || '(none)' },
        { label: 'Allowed', cell: (c) => `${wrap(c.allowedValues)}${c.unit ? ` (${c.unit})` : ''}` },
        { label: 'Applies', cell: (c) => (c.isDynamic ? 'at once' : 'after a restart') },
        { label: 'Pending restart', cell: (c) => (c.pendingRestart ? 'yes' : 'no') },
      ],
      list,
      'No parameters.',
    ),
  );
  if (!ctx.session.canManage) return section;

  const names = list.map((c) => c.name);
  const chooser = select('parameter', names, names[0]);
  const value = h('input', { type: 'text', name: 'value', autocomplete: 'off', maxlength: '1024' });
  const restart = h('input', { type: 'checkbox', id: 'param-restart' });
  const describe = () => {
    const c = list.find((x) => x.name === chooser.value);
    value.value = c?.value ?? '';
    hint.textContent = c ? `${c.description} Allowed: ${c.allowedValues}${c.unit ? ` (${c.unit})` : ''}.` : '';
  };
  const hint = h('p', { class: 'hint', id: 'param-hint' });
  chooser.addEventListener('change', describe);
  const result = h('div', { class: 'result' });
  const save = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        // The API refuses these too; saying so here spares a round trip.
        if (/[\u0000-\u001f\u007f'"\\#]/.test(value.value)) {
          result.replaceChildren(
            status('error', `Invalid value for ${chooser.value}: quotes, backslashes, # and control characters (such as newlines) are not allowed.`),
          );
          return;
        }
        result.replaceChildren(status('pending', `Setting ${chooser.value}…`));
        try {
          const c = await api<Configuration>('PUT', `${base}/configurations/${encodeURIComponent(chooser.value)}`, {
            value: value.value,
            ...(restart.checked ? { restart: true } : {}),
          });
          const note = c.pendingRestart ? 'pending a restart of the server' : c.isDynamic ? 'applied' : 'applied (the server was restarted)';
          result.replaceChildren(status('ok', `${c.name} = ${c.value || '(none)'}: ${note}.`));
          setTimeout(ctx.refresh, 1500);
        } catch (err) {
          result.replaceChildren(status('error', err instanceof Error ? err.message : String(err)));
        }
      },
    },
    'Save parameter',
  );
  section.append(
    h('h3', {}, 'Set a parameter'),
    field('Parameter', chooser).row,
    field('Value', value).row,
    hint,
    h('label', { for: restart.id, class: 'check' }, restart, ' Restart the server if the parameter needs it (open sessions end)'),
    h('div', { class: 'actions' }, save),
    result,
  );
  describe();
  return section;
}
