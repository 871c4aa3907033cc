// Crypto benchmark: PGWAEAD1 stream encrypt/decrypt MB/s through the Transforms (in-memory source,
// null sink); one-shot encryptBuffer/decryptBuffer of 4 KiB objects; KEK wrap/unwrap/check ops/s for the system
// provider and, when SoftHSM2 is installed, PKCS#11 (AES-GCM in the HSM, RSA-2048 OAEP) on a temp token.
// Runs on ONE core: it re-executes itself under `taskset -c 0` (unpinned, and saying so, without taskset).
// Prints one JSON object. Goal: stream ≥ 1,000 MB/s per core. Not a timed test; gates nothing.
// Run: node dist/bench/crypto.js [--mib 512] [--seconds 1] [--no-hsm]   (~15 s on 2 cores)
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createDecryptStream, createEncryptStream, decryptBuffer, encryptBuffer } from '../src/crypto/aead-stream.js';
import { newDataKey } from '../src/crypto/data-key.js';
import { serverKeyAad, type KekProvider } from '../src/crypto/kek.js';
import { createPkcs11Key, Pkcs11KekProvider } from '../src/crypto/pkcs11-kek.js';
import { SystemKeyRoot } from '../src/crypto/system-kek.js';

const PINNED = 'PGWARDEN_BENCH_PINNED';
const GOAL_MB_S = 1000;
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const { values: flags } = parseArgs({
  options: { mib: { type: 'string', default: '512' }, seconds: { type: 'string', default: '1' }, 'no-hsm': { type: 'boolean', default: false } },
});
const MIB = 1024 * 1024;
const total = Number(flags.mib) * MIB;
const runMs = Number(flags.seconds) * 1000;

const key = randomBytes(32);
const aad = serverKeyAad('bench', 'backup');
const mbps = (bytes: number, ms: number): number => Math.round(bytes / 1e6 / (ms / 1000));

function source(bytes: number, piece: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < bytes; sent += piece.length) yield piece;
    })(),
    { objectMode: false },
  );
}

function sink(counter: { bytes: number }, keep?: Buffer[]): Writable {
  return new Writable({
    highWaterMark: 1 * MIB,
    write(chunk: Buffer, _encoding, callback) {
      counter.bytes += chunk.length;
      keep?.push(chunk);
      callback();
    },
  });
}

async function streamStage(): Promise<Record<string, unknown>> {
  const piece = randomBytes(MIB);
  // encrypt: total bytes from memory to a null sink (after a short warm-up)
  await pipeline(source(32 * MIB, piece), createEncryptStream({ key, aad }), sink({ bytes: 0 }));
  const out = { bytes: 0 };
  let t = performance.now();
  await pipeline(source(total, piece), createEncryptStream({ key, aad }), sink(out));
  const encMs = performance.now() - t;
  // decrypt: half of it, encrypted once into memory, replayed in 1 MiB pieces
  const decBytes = Math.max(MIB, Math.floor(total / 2 / MIB) * MIB);
  const kept: Buffer[] = [];
  await pipeline(source(decBytes, piece), createEncryptStream({ key, aad }), sink({ bytes: 0 }, kept));
  const sealed = Buffer.concat(kept);
  kept.length = 0;
  const replay = Readable.from(
    (function* () {
      for (let o = 0; o < sealed.length; o += MIB) yield sealed.subarray(o, o + MIB);
    })(),
    { objectMode: false },
  );
  const plainOut = { bytes: 0 };
  t = performance.now();
  await pipeline(replay, createDecryptStream({ key, aad }), sink(plainOut));
  const decMs = performance.now() - t;
  if (plainOut.bytes !== decBytes) throw new Error(`decrypted ${plainOut.bytes} bytes, expected ${decBytes}`);
  const encrypt = mbps(total, encMs);
  const decrypt = mbps(decBytes, decMs);
  return {
    chunkSize: MIB,
    encrypt: { bytes: total, mbPerS: encrypt, goal: encrypt >= GOAL_MB_S ? 'met' : 'MISSED' },
    decrypt: { bytes: decBytes, mbPerS: decrypt, goal: decrypt >= GOAL_MB_S ? 'met' : 'MISSED' },
    overheadBytesPerMiB: 5 + 16,
  };
}

function rateSync(op: () => void): number {
  for (let i = 0; i < 50; i++) op();
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < runMs) {
    for (let i = 0; i < 20; i++) op();
    count += 20;
  }
  return Math.round((count * 1000) / (performance.now() - start));
}

async function rate(op: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await op();
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < runMs) {
    await op();
    count++;
  }
  return Math.round((count * 1000) / (performance.now() - start));
}

function oneShotStage(): Record<string, number> {
  const small = randomBytes(4096);
  const sealed = encryptBuffer(small, { key, aad });
  return { encrypt4KiBPerS: rateSync(() => encryptBuffer(small, { key, aad })), decrypt4KiBPerS: rateSync(() => decryptBuffer(sealed, { key, aad })) };
}

async function kekRates(kek: KekProvider): Promise<Record<string, number>> {
  const dataKey = newDataKey();
  const wrapped = await kek.wrap(dataKey, aad);
  return {
    wrapPerS: await rate(() => kek.wrap(dataKey, aad)),
    unwrapPerS: await rate(() => kek.unwrap(wrapped, aad)),
    checkPerS: await rate(() => kek.check()),
  };
}

async function kekStage(dir: string): Promise<Record<string, unknown>> {
  const root = await SystemKeyRoot.load(path.join(dir, 'root.key'));
  const result: Record<string, unknown> = { system: await kekRates(root.kek('bench')) };
  if (flags['no-hsm'] || !existsSync(SOFTHSM)) {
    result.pkcs11 = flags['no-hsm'] ? 'skipped (--no-hsm)' : `skipped (${SOFTHSM} not installed)`;
    return result;
  }
  await mkdir(path.join(dir, 'tokens'), { mode: 0o700 });
  await writeFile(path.join(dir, 'softhsm2.conf'), `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = path.join(dir, 'softhsm2.conf');
  const pin = randomBytes(8).toString('hex');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--so-pin', randomBytes(8).toString('hex'), '--pin', pin], { stdio: 'pipe' });
  process.env.PGW_BENCH_HSM_PIN = pin;
  const ref = { modulePath: SOFTHSM, tokenLabel: 'bench', pin: { pinEnv: 'PGW_BENCH_HSM_PIN' } };
  await createPkcs11Key({ ...ref, keyLabel: 'aes', type: 'aes-256' });
  await createPkcs11Key({ ...ref, keyLabel: 'rsa', type: 'rsa-2048' });
  const aes = await Pkcs11KekProvider.open({ ...ref, keyLabel: 'aes' });
  const rsa = await Pkcs11KekProvider.open({ ...ref, keyLabel: 'rsa', rsaOaepHash: 'sha1' });
  try {
    result.pkcs11 = {
      note: 'SoftHSM2 2.6 (software token); wrap includes a verifying unwrap in the HSM; check() logs in again and round-trips a test key; RSA uses OAEP SHA-1 (all SoftHSM 2.6 offers)',
      aesGcm: await kekRates(aes),
      rsa2048Oaep: await kekRates(rsa),
    };
  } finally {
    await aes.close();
    await rsa.close();
  }
  return result;
}

async function main(pinned: boolean): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-bench-crypto-'));
  try {
    const report = {
      bench: 'crypto',
      cpu: pinned ? 'one core (taskset -c 0)' : 'UNPINNED (taskset not found)',
      note: 'shared 2-core machine: numbers are noisy',
      node: process.version,
      openssl: process.versions.openssl,
      stream: await streamStage(),
      oneShot: oneShotStage(),
      kek: await kekStage(dir),
    };
    console.log(JSON.stringify(report, null, 2));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (!(Number(flags.mib) >= 1 && Number(flags.seconds) > 0)) throw new Error('--mib must be ≥ 1 and --seconds > 0');
if (process.env[PINNED] === '1') {
  await main(true);
} else {
  const run = spawnSync('taskset', ['-c', '0', process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [PINNED]: '1' },
  });
  if (run.error !== undefined) await main(false);
  else if (run.status !== 0) process.exit(run.status ?? 1);
}
