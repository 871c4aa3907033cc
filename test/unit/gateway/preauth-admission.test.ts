import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { PreauthAdmission, addressBucket, type DescriptorUsage, type PreauthTicket } from '../../../src/gateway/preauth-admission.js';
import { PreauthReport } from '../../../src/gateway/preauth-report.js';
import { EventBus } from '../../../src/events/bus.js';
import type { AnyEvent } from '../../../src/events/types.js';

const plenty: DescriptorUsage = { open: () => 100, limit: 100_000 };
const limits = { maxPreauthConnections: 5, maxPreauthPerAddress: 2, descriptorReserve: 1000 };
const ticket = (t: PreauthTicket | string): PreauthTicket => {
  assert.equal(typeof t, 'object', `refused: ${String(t)}`);
  return t as PreauthTicket;
};

describe('addressBucket', () => {
  it('IPv4 is its own bucket; IPv6 counts by /64', () => {
    assert.equal(addressBucket('192.0.2.7'), '192.0.2.7');
    assert.equal(addressBucket('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(addressBucket('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(addressBucket('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(addressBucket('2001:db8:1:3::1'), '2001:db8:1:3::/64');
    assert.equal(addressBucket('::1'), '::/64');
  });
});

describe('PreauthAdmission', () => {
  it('caps one address, and one IPv6 /64 however many addresses it uses', () => {
    const a = new PreauthAdmission(limits, plenty);
    ticket(a.admit('10.0.0.1'));
    const second = ticket(a.admit('10.0.0.1'));
    assert.equal(a.admit('10.0.0.1'), 'per-address');
    ticket(a.admit('10.0.0.2'));
    second.release();
    second.release(); // idempotent
    ticket(a.admit('10.0.0.1'));
    assert.equal(a.admit('10.0.0.1'), 'per-address');

    const b = new PreauthAdmission(limits, plenty);
    ticket(b.admit('2001:db8::1'));
    ticket(b.admit('2001:db8::ffff:2'));
    assert.equal(b.admit('2001:db8::3'), 'per-address');
    ticket(b.admit('2001:db8:0:1::3'));
  });
  it('caps the total; a PROXY peer counts in the total only', () => {
    const a = new PreauthAdmission(limits, plenty);
    const held = [1, 2, 3, 4].map((i) => ticket(a.admit(`10.0.0.${i}`)));
    ticket(a.admit('10.0.0.9', false));
    assert.equal(a.open, 5);
    assert.equal(a.admit('10.0.0.10'), 'global');
    held[0]!.release();
    ticket(a.admit('10.0.0.9', false));
    assert.equal(a.admit('10.0.0.9', false), 'global');
  });
  it('refuses while fewer descriptors than the reserve are left', () => {
    let open = 98_000;
    const a = new PreauthAdmission(limits, { open: () => open, limit: 100_000 });
    ticket(a.admit('10.0.0.1'));
    open = 99_001;
    assert.equal(a.admit('10.0.0.2'), 'descriptor-reserve');
    open = 99_000;
    ticket(a.admit('10.0.0.2'));
  });
});

describe('PreauthReport', () => {
  it('one summary event per interval, with counts by reason and the addresses refused most', () => {
    const bus = new EventBus();
    const seen: AnyEvent[] = [];
    bus.subscribe((e) => seen.push(e));
    const report = new PreauthReport(bus, new Registry(), 60_000, () => 0);
    for (let i = 0; i < 1000; i++) report.refused('per-address', '192.0.2.1');
    for (let i = 0; i < 3; i++) report.refused('first-byte-timeout', '192.0.2.2');
    report.refused('global', '2001:db8::/64');
    assert.equal(seen.length, 0, 'nothing per socket');
    report.flush();
    assert.equal(seen.length, 1);
    const e = seen[0] as Extract<AnyEvent, { type: 'gateway.preauth_refused' }>;
    assert.equal(e.type, 'gateway.preauth_refused');
    assert.equal(e.refused, 1004);
    assert.deepEqual(e.reasons, { 'per-address': 1000, 'first-byte-timeout': 3, global: 1 });
    assert.deepEqual(e.addresses, [
      { address: '192.0.2.1', refused: 1000 },
      { address: '192.0.2.2', refused: 3 },
      { address: '2001:db8::/64', refused: 1 },
    ]);
    report.flush();
    assert.equal(seen.length, 1, 'an empty interval writes nothing');
  });
});
