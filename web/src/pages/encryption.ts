// Encryption and backups of one server: the key-encryption key in use (system- or
// customer-managed, its last validation, the encrypted volume), rotate and revalidate, the switch
// to a customer key in an HSM and back; the encrypted backups with their sizes and WAL ranges,
// "back up now" and a restore to a point in time into a new server, both followed through
// GET /operations/{id} until they end. A role that may not change them sees the same facts and
// no control.
import { enc, get } from '../api.js';
import { h } from '../dom.js';
import type { Page } from '../page.js';
import { serverHeader } from '../server-nav.js';
import type { Backup, KeyInUse, Server } from '../types.js';
import { backupSection, restoreSection, settle } from './encryption-backups.js';
import { keySection } from './encryption-key.js';

export { INACCESSIBLE } from './encryption-key.js';
export { localToUtcIso } from './encryption-backups.js';

export const encryptionPage: Page = {
  title: (p) => `Encryption and backups · ${p.name}`,
  async render(ctx) {
    const name = ctx.params.name!;
    const base = `/servers/${enc(name)}`;
    const [server, key, backups] = await Promise.all([
      get<Server>(base),
      settle(get<KeyInUse>(`${base}/keys`)),
      settle(get<{ value: Backup[] }>(`${base}/backups`)),
    ]);
    const banner = h('div', { class: 'key-banner-slot' });
    return h(
      'div',
      {},
      serverHeader(name, '/encryption', `Encryption and backups of ${name}`),
      banner,
      keySection(ctx, base, server, key, banner),
      backupSection(ctx, base, backups),
      ctx.session.canManage ? restoreSection(ctx, base) : null,
    );
  },
};
