// FIPS mode: whether Node's OpenSSL can run on the OpenSSL 3 FIPS provider, and turning it on.
// crypto.setFips(true) alone proves nothing: without a loaded FIPS provider it "succeeds" and then
// every algorithm fails (error:0308010C unsupported). So availability is probed in a child process
// and enabling is verified with a known-answer self-test, and undone when it fails.
// Operator setup (fipsinstall, nodejs_conf, OPENSSL_CONF / OPENSSL_MODULES): FIPS.md.
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash, getFips, hkdfSync, setFips } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';

export interface FipsStatus {
  readonly available: boolean;
  readonly enabled: boolean;
  readonly reason?: string;
}

export class FipsUnavailableError extends Error {
  override readonly name = 'FipsUnavailableError';
}

const HOW_TO =
  'Install and configure the OpenSSL 3 FIPS provider (openssl fipsinstall -module <dir>/fips.so -out <dir>/fipsmodule.cnf; ' +
  'an OpenSSL config with a nodejs_conf section that does ".include fipsmodule.cnf" and activates fips and base), ' +
  'start pgwarden with OPENSSL_CONF=<that config> and OPENSSL_MODULES=<dir>, then retry; see src/crypto/FIPS.md.';

let probed: FipsStatus | undefined;

/** Is FIPS mode on (and working), and could it be turned on in this process. */
export function fipsStatus(): FipsStatus {
  if (getFips() === 1) {
    const failure = selfTest();
    if (failure === undefined) return { available: true, enabled: true };
    return { available: false, enabled: false, reason: `FIPS mode is set but the FIPS provider does not work: ${failure}` };
  }
  probed ??= probeInChild();
  return probed;
}

/** Turns FIPS mode on for this process; throws FipsUnavailableError (and leaves it off) when the provider is not there. */
export function enableFips(): void {
  if (getFips() === 1 && selfTest() === undefined) return;
  try {
    setFips(true);
  } catch (err) {
    throw new FipsUnavailableError(`FIPS mode cannot be enabled: ${(err as Error).message}. ${HOW_TO}`);
  }
  const failure = selfTest();
  if (getFips() !== 1 || failure !== undefined) {
    try {
      setFips(false);
    } catch {
      // it was never really on
    }
    throw new FipsUnavailableError(`FIPS mode cannot be enabled: ${failure ?? 'crypto.getFips() stays 0'}${moduleHint()}. ${HOW_TO}`);
  }
}

/** undefined when SHA-256, HKDF-SHA-256 and AES-256-GCM give their known answers; else what failed. */
function selfTest(): string | undefined {
  try {
    const digest = createHash('sha256').update('abc').digest('hex');
    if (digest !== 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad') return 'SHA-256 gave a wrong answer';
    hkdfSync('sha256', Buffer.alloc(32, 1), Buffer.alloc(0), Buffer.from('fips-self-test'), 32);
    const cipher = createCipheriv('aes-256-gcm', Buffer.alloc(32), Buffer.alloc(12));
    cipher.update(Buffer.alloc(16));
    cipher.final();
    // NIST GCM test case 14 (K=0^256, IV=0^96, P=0^128): tag 0xd0d1c8a799996bf0265b98b5d48ab919
    if (cipher.getAuthTag().toString('hex') !== 'd0d1c8a799996bf0265b98b5d48ab919') return 'AES-256-GCM gave a wrong answer';
    return undefined;
  } catch (err) {
    return `the self-test failed (${(err as Error).message})`;
  }
}

function probeInChild(): FipsStatus {
  const script = `
    const c = require('node:crypto');
    try { c.setFips(true); } catch (e) { console.log('setFips: ' + e.message); process.exit(0); }
    try { c.createHash('sha256').update('x').digest(); const k = c.createCipheriv('aes-256-gcm', Buffer.alloc(32), Buffer.alloc(12)); k.final(); console.log('ok'); }
    catch (e) { console.log(e.message); }`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000, env: process.env });
  const out = (run.stdout ?? '').trim();
  if (out === 'ok') return { available: true, enabled: false };
  return {
    available: false,
    enabled: false,
    reason: `the OpenSSL FIPS provider is not configured for Node.js (${out || run.error?.message || 'probe failed'})${moduleHint()}`,
  };
}

/** Where a fips.so was looked for, when none was found. */
function moduleHint(): string {
  const dirs = [process.env.OPENSSL_MODULES, opensslModulesDir()].filter((d): d is string => d !== undefined && d !== '');
  const found = dirs.find((d) => existsSync(path.join(d, 'fips.so')));
  if (found !== undefined)
    return `; ${path.join(found, 'fips.so')} exists but is not activated in the OpenSSL config Node.js reads (OPENSSL_CONF, section nodejs_conf)`;
  return dirs.length === 0 ? '; no OpenSSL modules directory found' : `; no fips.so in ${dirs.join(' or ')}`;
}

function opensslModulesDir(): string | undefined {
  const run = spawnSync('openssl', ['version', '-m'], { encoding: 'utf8', timeout: 5_000 });
  const match = /MODULESDIR:\s*"([^"]*)"/.exec(run.stdout ?? '');
  return match?.[1];
}
