// The native floor (native/floor, Rust): the same bare TLS-to-Unix relay as node-floor, in a
// native process, with rustls or OpenSSL. Built on demand with cargo (not at install: CI and
// `npm test` never need cargo); when cargo or the crates are missing the legs are skipped.
// Started in its own process, so its CPU time is its own in /proc; stopped by its PID.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stoppableChild } from './cleanup.js';
import type { TlsFiles } from './tls-files.js';

// dist/bench/lib → the repository root.
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const manifest = path.join(repo, 'native/floor/Cargo.toml');
// Its own target dir whatever CARGO_TARGET_DIR says, so the binary is where the bench looks.
const target = path.join(repo, 'native/floor/target');
const binary = path.join(target, 'release/pgwarden-floor');

export type NativeBackend = 'rustls' | 'openssl';
/** multi: one work-stealing tokio runtime, a worker per core; percore: a single-threaded
 * runtime per core, each accepting on the shared listener; single: one thread in all. */
export type NativeRuntime = 'multi' | 'percore' | 'single';

export interface NativeFloor {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

function cargo(): string | null {
  for (const c of ['cargo', path.join(os.homedir(), '.cargo/bin/cargo')]) {
    if (spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0) return c;
  }
  return null;
}

/** Builds the floor (release). Returns null when it is ready, else why the legs are skipped. */
export function buildNativeFloor(): string | null {
  if (!existsSync(manifest)) return `${manifest} is missing`;
  const bin = cargo();
  if (!bin) return 'cargo is not installed';
  const build = (offline: boolean) =>
    spawnSync(bin, ['build', '--release', '--quiet', ...(offline ? ['--offline'] : []), '--manifest-path', manifest, '--target-dir', target], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
  // Offline first: crates already fetched build without the network; else fetch them once.
  let r = build(true);
  if (r.status !== 0) r = build(false);
  if (r.status !== 0 || !existsSync(binary)) {
    const tail = `${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim().split('\n').slice(-3).join(' | ');
    return `cargo build failed (${tail})`;
  }
  return null;
}

export async function startNativeFloor(opts: {
  tls: TlsFiles;
  socketPath: string;
  backend: NativeBackend;
  runtime: NativeRuntime;
  threads?: number;
}): Promise<NativeFloor> {
  const args = ['--backend', opts.backend, '--cert', opts.tls.certFile, '--key', opts.tls.keyFile, '--socket', opts.socketPath];
  const threads = opts.runtime === 'single' ? 1 : (opts.threads ?? os.availableParallelism());
  args.push('--listen', '127.0.0.1:0', '--runtime', opts.runtime === 'multi' ? 'multi' : 'percore', '--threads', String(threads));
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const { exited, stop } = stoppableChild(child, `stop native floor (${opts.backend})`);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /^ready (\d+)$/m.exec(out);
        if (m) resolve(Number(m[1]));
      });
      void exited.then(() => reject(new Error(`native floor (${opts.backend}) exited before it listened`)));
    });
    return { port, pid: child.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

let tickMs = 0;
/** utime alone of one process, ms: the TLS library and the relay's own code, without the
 * kernel's socket work (the same for every floor), so rustls and OpenSSL compare directly. */
export function userCpuMs(pid: number): number {
  if (!tickMs) {
    const hz = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
    tickMs = 1000 / (hz || 100);
  }
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesized command name; utime is field 14.
    return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[14 - 3]) * tickMs;
  } catch {
    return NaN; // gone
  }
}
