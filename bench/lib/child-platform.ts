// The parent's handle on a platform child (platform-child.ts): start it (optionally under
// `node --cpu-prof --cpu-prof-dir=DIR`), call it, stop it and get the .cpuprofile path.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PlatformOptions } from '../../src/app/platform.js';
import type { ChildCommand, ChildReply, ChildStatus } from './child-protocol.js';
import { onCleanup } from './cleanup.js';

const childScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'platform-child.js');

export class ChildPlatform {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private stopped = false;
  private unregister: () => void = () => undefined;
  gatewayPort = 0;

  private constructor(
    private readonly child: ChildProcess,
    private readonly exited: Promise<number | null>,
    private readonly profileDir: string | null,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  static async start(options: PlatformOptions, cpuProfileDir: string | null, execArgv: readonly string[] = []): Promise<ChildPlatform> {
    if (cpuProfileDir) mkdirSync(cpuProfileDir, { recursive: true });
    const child = fork(childScript, [], {
      execArgv: [...(cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : []), ...execArgv],
      env: { ...process.env, PGWARDEN_BENCH_OPTIONS: JSON.stringify(options) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const cp = new ChildPlatform(child, exited, cpuProfileDir);
    cp.unregister = onCleanup('stop platform child', async () => {
      await cp.stop().catch(() => undefined);
    });
    child.on('message', (m: ChildReply | ChildStatus) => {
      if ('seq' in m) {
        const p = cp.pending.get(m.seq);
        cp.pending.delete(m.seq);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(new Error(m.error));
      }
    });
    void exited.then((code) => {
      for (const p of cp.pending.values()) p.reject(new Error(`platform child exited (${code})`));
      cp.pending.clear();
    });
    try {
      cp.gatewayPort = await new Promise<number>((resolve, reject) => {
        child.on('message', (m: ChildReply | ChildStatus) => {
          if ('ready' in m) resolve(m.ready.gatewayPort);
          else if ('failed' in m) reject(new Error(`platform child failed to start: ${m.failed}`));
        });
        void exited.then((code) => reject(new Error(`platform child exited (${code}) before it was up`)));
      });
    } catch (err) {
      await cp.stop().catch(() => undefined);
      throw err;
    }
    return cp;
  }

  call<T>(command: ChildCommand): Promise<T> {
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...command, seq });
    });
  }

  /** Stops the platform; returns the .cpuprofile it wrote, if it was profiled. */
  async stop(): Promise<string | null> {
    if (!this.stopped) {
      this.stopped = true;
      this.unregister();
      if (this.child.connected) this.child.send('stop');
      else this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 60_000);
      await this.exited;
      clearTimeout(timer);
    }
    if (!this.profileDir) return null;
    const file = readdirSync(this.profileDir).find((f) => f.endsWith('.cpuprofile') && f.includes(`.${this.child.pid}.`));
    if (!file) throw new Error(`no .cpuprofile for pid ${this.child.pid} in ${this.profileDir}`);
    return path.join(this.profileDir, file);
  }
}
