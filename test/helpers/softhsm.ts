// SoftHSM2 for tests of customer-managed keys: a token in a temp dir, and the HSM operator's
// actions on a key done from another process, as pkcs11-tool would do them.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './platform.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
/** The name platforms in tests configure SoftHSM under (`up --pkcs11-module softhsm=PATH`); the
 * API and the CLI name it, never its path. */
export const SOFTHSM_MODULE_NAME = 'softhsm';
export const SOFTHSM_MODULES: Readonly<Record<string, string>> = { [SOFTHSM_MODULE_NAME]: SOFTHSM_MODULE };

/** A fresh token in its own dir; sets SOFTHSM2_CONF, which must happen before the module is
 * first loaded in this process. Returns the dir (remove it after the tests). */
export function initSoftHsmToken(label: string, pin: string): string {
  const dir = tempDir('pgw-hsm-');
  mkdirSync(path.join(dir, 'tokens'), { mode: 0o700 });
  const conf = path.join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', `so-${pin}`, '--pin', pin], { stdio: 'pipe' });
  return dir;
}

/** Deletes, disables (CKA_DECRYPT false) or enables a key object (a secret key by default) in the token. */
export function hsmOperator(
  action: 'delete' | 'disable' | 'enable',
  o: { token: string; pin: string; label: string; objectClass?: 'secret' | 'private' },
): void {
  const script = `
    const p = require(${JSON.stringify(path.resolve('node_modules/pkcs11js'))});
    const [action, token, label, cls] = process.argv.slice(1);
    const l = new p.PKCS11(); l.load(${JSON.stringify(SOFTHSM_MODULE)}); l.C_Initialize();
    const slot = l.C_GetSlotList(true).find((s) => l.C_GetTokenInfo(s).label.trim() === token);
    const s = l.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    l.C_Login(s, p.CKU_USER, process.env.PGW_HSM_PIN);
    l.C_FindObjectsInit(s, [{ type: p.CKA_LABEL, value: label }, { type: p.CKA_CLASS, value: cls === 'private' ? p.CKO_PRIVATE_KEY : p.CKO_SECRET_KEY }]);
    const found = l.C_FindObjects(s, 10); l.C_FindObjectsFinal(s);
    if (found.length === 0) throw new Error('no such key ' + label);
    for (const h of found) {
      if (action === 'delete') l.C_DestroyObject(s, h);
      else l.C_SetAttributeValue(s, h, [{ type: p.CKA_DECRYPT, value: action === 'enable' }]);
    }
    l.C_Logout(s); l.C_Finalize();`;
  execFileSync(process.execPath, ['-e', script, action, o.token, o.label, o.objectClass ?? 'secret'], {
    env: { ...process.env, PGW_HSM_PIN: o.pin },
    stdio: 'pipe',
  });
}
