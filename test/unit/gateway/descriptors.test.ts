import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { ProcDescriptors, nofileSoftLimit, raiseNofileLimit } from '../../../src/gateway/descriptors.js';

describe('descriptors', () => {
  it('raiseNofileLimit leaves the soft limit at the hard one, as /proc/self/limits shows', () => {
    const r = raiseNofileLimit();
    assert.equal(r.soft, r.hard);
    assert.equal(nofileSoftLimit(), r.soft);
  });
  it('ProcDescriptors counts /proc/self/fd and adds the sockets accepted since', () => {
    const d = new ProcDescriptors(100_000, 10, 60_000);
    const first = d.open();
    assert.ok(Math.abs(first - readdirSync('/proc/self/fd').length) <= 2);
    d.accepted();
    d.accepted();
    assert.equal(d.open(), first + 2);
  });
  it('near the limit it counts afresh instead of trusting the estimate', () => {
    const real = readdirSync('/proc/self/fd').length;
    const d = new ProcDescriptors(real + 15, 10, 60_000);
    d.open();
    for (let i = 0; i < 50; i++) d.accepted();
    // 50 accepted sockets that never existed: a fresh count (at most every 20 ms) drops them.
    const end = Date.now() + 1000;
    let n = d.open();
    while (n > real + 5 && Date.now() < end) n = d.open();
    assert.ok(n <= real + 5, `estimate ${n} kept beyond the real ${real}`);
  });
});
