// A platform in a child process (the gateway benchmark's platform): the parent forks this file
// with the platform options in PGWARDEN_BENCH_OPTIONS, optionally under `node --cpu-prof`, and
// drives it over IPC (child-platform.ts). Keeping the platform out of the bench's own process
// means the gateway's event loop and profile hold nothing but the platform. On 'stop' the child
// stops the platform and exits normally, which is when Node writes the .cpuprofile.
import { Platform, type PlatformOptions } from '../../src/app/platform.js';
import type { ChildReply, ChildRequest } from './child-protocol.js';

const options = JSON.parse(process.env.PGWARDEN_BENCH_OPTIONS ?? '{}') as PlatformOptions;
const platform = new Platform(options);
let stopping = false;

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await platform.stop().catch(() => undefined);
  process.exit(code);
}

async function handle(req: ChildRequest): Promise<unknown> {
  switch (req.cmd) {
    case 'createServer': {
      const s = await platform.serverService.create({ name: req.name, administratorLogin: req.login, administratorLoginPassword: req.password });
      return s.id;
    }
    case 'allowLoopback': {
      await platform.networkService.putFirewallRule(req.name, 'bench-loopback', { startIpAddress: '127.0.0.1', endIpAddress: '127.0.0.1' });
      const deadline = Date.now() + 10_000;
      while (!platform.snapshots.snapshot.network.servers.get(req.name)?.firewall.match('127.0.0.1')) {
        if (Date.now() > deadline) throw new Error('the firewall rule did not reach the gateway snapshot in 10 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      return null;
    }
    case 'stopServerProcess':
      // The postmaster stops and its volume locks, as on any stop; the bench's own postmaster on
      // the same data directory needs it unlocked again.
      await platform.servers.stop(req.id);
      return platform.servers.openVolume(req.id);
    case 'startServerProcess':
      return platform.servers.start(req.id);
    case 'roleVerifier':
      return (await platform.servers.roleVerifier(req.id, req.role))?.rolpassword ?? null;
    case 'memory':
      (globalThis as { gc?: () => void }).gc?.();
      return process.memoryUsage();
    case 'query': {
      const c = await platform.servers.connect(req.id);
      try {
        return (await c.query(req.sql)).rows;
      } finally {
        await c.end();
      }
    }
  }
}

process.on('message', (msg: ChildRequest | 'stop') => {
  if (msg === 'stop') return void stop(0);
  handle(msg).then(
    (value) => process.send?.({ seq: msg.seq, ok: true, value } satisfies ChildReply),
    (err: Error) => process.send?.({ seq: msg.seq, ok: false, error: err.message } satisfies ChildReply),
  );
});
process.on('disconnect', () => void stop(0)); // the parent went away
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));

try {
  await platform.start();
  process.send?.({ ready: { gatewayPort: platform.gateway.port } });
} catch (err) {
  process.send?.({ failed: (err as Error).message });
  await stop(1);
}
