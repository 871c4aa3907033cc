// Every alert of the platform, across servers, with filters.
import { get } from '../api.js';
import { h, status } from '../dom.js';
import type { Page } from '../page.js';
import { alertFilterForm, alertQuery, alertTable, type AlertFilter } from '../alert-view.js';
import type { Alert } from '../types.js';

let filter: AlertFilter = { state: 'Active', severity: '', type: '' };

export const alertsPage: Page = {
  title: () => 'Alerts',
  async render() {
    const list = h('div', { 'aria-live': 'polite' });
    const load = async () => {
      try {
        list.replaceChildren(alertTable((await get<{ value: Alert[] }>(`/alerts${alertQuery(filter)}`)).value, true));
      } catch (err) {
        list.replaceChildren(status('error', err instanceof Error ? err.message : String(err)));
      }
    };
    await load();
    return h(
      'div',
      {},
      h('h1', {}, 'Alerts'),
      h(
        'section',
        { class: 'card' },
        alertFilterForm(filter, (f) => {
          filter = f;
          void load();
        }),
        list,
      ),
    );
  },
};
