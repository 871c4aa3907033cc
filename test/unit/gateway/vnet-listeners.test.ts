// VnetListeners with real sockets on loopback: served by its own socket, by a public wildcard,
// or not at all with the reason (another socket holds the address, the address is not this host's).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { pino } from 'pino';
import { VnetListeners, probeBind } from '../../../src/gateway/vnet-listeners.js';
import type { ListenerSpec } from '../../../src/gateway/context.js';
import type { NetworkView } from '../../../src/gateway/network-stage.js';

const servers: net.Server[] = [];
const changes: string[] = [];
after(() => {
  for (const s of servers) s.close();
});

function listen(host: string, port: number): Promise<net.Server> {
  const server = net.createServer();
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve(server));
  });
}
const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;

function view(vnets: Record<string, string | null>): NetworkView {
  return {
    servers: new Map(),
    vnets: new Map(Object.entries(vnets).map(([name, listenAddress]) => [name, { name, subnets: [], listenAddress }])),
  };
}

function listeners(publicHost: string, port: number): VnetListeners {
  return new VnetListeners({
    open: (spec: ListenerSpec) => listen(spec.host, spec.port),
    publicBound: () => [{ address: publicHost, port }],
    publicPort: () => port,
    changed: (vnet, status) => changes.push(`${vnet} ${status.state}`),
    log: pino({ level: 'silent' }),
  });
}

describe('VnetListeners', () => {
  it('binds a socket of its own beside a specific public bind, and says why it cannot when another holds it', async () => {
    const pub = await listen('127.0.0.1', 0);
    const port = portOf(pub);
    const blocker = await listen('127.30.0.2', port);
    const l = listeners('127.0.0.1', port);
    await l.sync(view({ own: '127.30.0.1', held: '127.30.0.2', none: null }));
    assert.deepEqual(l.status('own'), { state: 'Ready', address: '127.30.0.1', via: 'own-socket' });
    assert.deepEqual(l.status('held'), { state: 'Failed', address: '127.30.0.2', reason: `another socket already listens on 127.30.0.2 port ${port}` });
    assert.equal(l.status('none'), null);
    assert.equal(l.portOf('own'), port);
    assert.equal(await l.check('held', '127.30.0.2'), `another socket already listens on 127.30.0.2 port ${port}`);
    assert.equal(await l.check('own', '127.30.0.1'), null);
    // The blocker goes: the next sync serves the network.
    await new Promise<void>((r) => blocker.close(() => r()));
    await l.sync(view({ own: '127.30.0.1', held: '127.30.0.2' }));
    assert.equal(l.status('held')?.state, 'Ready');
    // A network that goes away gives its socket back.
    assert.deepEqual(changes.splice(0), ['own Ready', 'held Failed', 'held Ready'], 'only transitions are told');
    await l.sync(view({ held: '127.30.0.2' }));
    assert.equal(l.status('own'), null);
    assert.equal(await probeBind('127.30.0.1', port), null);
    await l.close();
  });

  it('under a wildcard public bind: served by the public listener, no socket of its own', async () => {
    const pub = await listen('0.0.0.0', 0);
    const port = portOf(pub);
    const l = listeners('0.0.0.0', port);
    await l.sync(view({ corp: '127.31.0.1' }));
    assert.deepEqual(l.status('corp'), { state: 'Ready', address: '127.31.0.1', via: 'public-listener' });
    assert.equal(l.addresses.get('127.31.0.1'), 'corp');
    assert.equal(l.portOf('corp'), port);
    assert.equal(await l.check('x', '127.31.0.9'), null);
    await l.close();
  });

  it("an address that is not this host's is Failed, and check says so", async () => {
    const l = listeners('0.0.0.0', 5999);
    // 10.214.0.1 is on no interface here: only a bind is tried, nothing is sent.
    assert.equal(await l.check('far', '10.214.0.1'), '10.214.0.1 is not an address of this host');
    await l.sync(view({ far: '10.214.0.1' }));
    assert.deepEqual(l.status('far'), { state: 'Failed', address: '10.214.0.1', reason: '10.214.0.1 is not an address of this host' });
    await l.close();
  });
});
