// The parent's handle on a node-floor relay (node-floor-server.ts) in its own process: its own
// event loop and its own CPU time in /proc, as the gateway's platform child has.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TLS12_CIPHERS, TLS13_SUITES } from '../../src/gateway/tls-certificates.js';
import { stoppableChild } from './cleanup.js';
import type { FloorSettings, FloorVariant } from './node-floor-server.js';
import type { TlsFiles } from './tls-files.js';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node-floor-server.js');

export interface NodeFloor {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startNodeFloor(opts: { tls: TlsFiles; socketPath: string; variant: FloorVariant; cpuProfDir?: string }): Promise<NodeFloor> {
  const settings: FloorSettings = {
    certFile: opts.tls.certFile,
    keyFile: opts.tls.keyFile,
    socketPath: opts.socketPath,
    variant: opts.variant,
    ciphers: `${TLS13_SUITES}:${TLS12_CIPHERS}`,
  };
  const child: ChildProcess = fork(script, [], {
    execArgv: opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [],
    env: { ...process.env, PGWARDEN_FLOOR: JSON.stringify(settings) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { exited, stop } = stoppableChild(child, 'stop node floor');
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { ready: number }) => resolve(m.ready));
      void exited.then(() => reject(new Error('node floor exited before it listened')));
    });
    return { port, pid: child.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
