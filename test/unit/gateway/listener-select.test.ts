import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalAddress, listenerFor, publicCoverage } from '../../../src/gateway/listener-select.js';
import type { ListenerSpec } from '../../../src/gateway/context.js';

describe('publicCoverage', () => {
  const wildcard = [
    { address: '0.0.0.0', port: 5432 },
    { address: '::', port: 5432 },
  ];
  it('a wildcard bind of the same family on the same port receives the address', () => {
    assert.equal(publicCoverage('127.20.0.1', 5432, wildcard), 'wildcard');
    assert.equal(publicCoverage('fd00:1::1', 5432, wildcard), 'wildcard');
    assert.equal(publicCoverage('::ffff:10.0.0.1', 5432, wildcard), 'wildcard');
  });
  it('another port, or only the other family, does not', () => {
    assert.equal(publicCoverage('127.20.0.1', 6432, wildcard), null);
    assert.equal(publicCoverage('127.20.0.1', 5432, [{ address: '::', port: 5432 }]), null);
    assert.equal(publicCoverage('fd00::1', 5432, [{ address: '0.0.0.0', port: 5432 }]), null);
  });
  it('a bind to the very address is exact, even beside a wildcard', () => {
    assert.equal(
      publicCoverage('::1', 5432, [
        { address: '0.0.0.0', port: 5432 },
        { address: '::1', port: 5432 },
      ]),
      'exact',
    );
    assert.equal(publicCoverage('127.0.0.1', 5432, [{ address: '127.0.0.1', port: 5432 }]), 'exact');
    assert.equal(publicCoverage('127.0.0.2', 5432, [{ address: '127.0.0.1', port: 5432 }]), null);
  });
});

describe('listenerFor', () => {
  const vnets = new Map([
    ['127.20.0.1', 'corp'],
    ['fd00:1::1', 'lab'],
  ]);
  const pub: ListenerSpec = { kind: 'public', host: '0.0.0.0', port: 5432 };
  it("a public listener's connection to a network's listen address is that network's", () => {
    assert.deepEqual(listenerFor(pub, '127.20.0.1', vnets), { kind: 'private', vnet: 'corp', host: '127.20.0.1', port: 5432 });
    assert.deepEqual(listenerFor(pub, '::ffff:127.20.0.1', vnets), { kind: 'private', vnet: 'corp', host: '127.20.0.1', port: 5432 });
    assert.deepEqual(listenerFor({ ...pub, host: '::' }, 'fd00:1:0:0::1', vnets), { kind: 'private', vnet: 'lab', host: 'fd00:1::1', port: 5432 });
  });
  it('other addresses stay public; PROXY and private-link listeners are left alone', () => {
    assert.equal(listenerFor(pub, '127.0.0.1', vnets), pub);
    assert.equal(listenerFor(pub, undefined, vnets), pub);
    const proxied: ListenerSpec = { ...pub, proxy: [] };
    assert.equal(listenerFor(proxied, '127.20.0.1', vnets), proxied);
    const link: ListenerSpec = { kind: 'private-link', host: '0.0.0.0', port: 5433, proxy: [] };
    assert.equal(listenerFor(link, '127.20.0.1', vnets), link);
  });
  it('canonicalAddress: RFC 5952 and IPv4 for mapped addresses; names as given', () => {
    assert.equal(canonicalAddress('FD00:0001:0:0::0001'), 'fd00:1::1');
    assert.equal(canonicalAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(canonicalAddress('localhost'), 'localhost');
  });
});
