// The shape cache's look-ups: the last entry found is remembered (compared before the key is
// hashed) and forgotten at any set, so a look-up always sees what the cache holds; and the
// classifier's look-up of a literal-free text by its own text, before lexing, which it makes only
// for texts that look like the literal-free ones it cached.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Classifier } from '../../../../src/audit/classify/index.js';
import { lexCounters, ShapeCache, ShapeSlot } from '../../../../src/sql/shape-cache.js';

describe('shape cache', () => {
  it('a look-up sees every set, replacement and eviction', () => {
    const cache = new ShapeCache(2, 1 << 20);
    const a = new ShapeSlot<number>('a');
    const b = new ShapeSlot<number>('b');
    const key = (s: string) => `SELECT ${s}`.slice(0); // not the same string object each time
    cache.set(key('x'), a, 1, 10);
    assert.equal(cache.get(key('x'), a), 1);
    assert.equal(cache.get(key('x'), a), 1); // the remembered entry
    assert.equal(cache.get(key('x'), b), undefined);
    cache.set(key('x'), b, 2, 10);
    assert.equal(cache.get(key('x'), b), 2);
    cache.set(key('x'), a, 3, 10);
    assert.equal(cache.get(key('x'), a), 3);
    assert.equal(cache.get(key('y'), a), undefined);
    assert.equal(cache.get(key('x'), a), 3);
    // A remembered entry evicted: the look-up misses.
    const one = new ShapeCache(1, 1 << 20);
    one.set(key('x'), a, 1, 10);
    assert.equal(one.get(key('x'), a), 1);
    one.set(key('y'), a, 2, 10);
    assert.equal(one.size, 1);
    assert.equal(one.get(key('x'), a), undefined);
    assert.equal(one.get(key('y'), a), 2);
    one.set(key('x'), a, 3, 10);
    assert.equal(one.get(key('y'), a), undefined);
    assert.equal(one.get(key('x'), a), 3);
  });

  it('a remembered entry in use is kept like any other', () => {
    const cache = new ShapeCache(3, 1 << 20);
    const a = new ShapeSlot<string>('a');
    cache.set('hot', a, 'h', 10);
    for (let i = 0; i < 50; i++) {
      assert.equal(cache.get('hot', a), 'h');
      assert.equal(cache.get('hot', a), 'h');
      cache.set(`cold ${i}`, a, 'c', 10);
    }
    assert.equal(cache.get('hot', a), 'h');
  });
});

describe('classifier look-up of literal-free texts', () => {
  it('served without a lex once cached, by the classifier that cached it', () => {
    const sql = `SELECT now(), current_user /* ${Math.random()} */`; // a text no other test caches
    const one = new Classifier();
    const lexed0 = lexCounters.texts;
    const first = one.classify(sql);
    assert.equal(lexCounters.texts - lexed0, 1);
    assert.equal(one.classify(sql.slice(0)), first);
    assert.equal(lexCounters.texts - lexed0, 1, 'a cached literal-free text is not lexed again');
    const two = new Classifier();
    const second = two.classify(sql.slice(0));
    assert.deepEqual(second, first);
    assert.equal(lexCounters.texts - lexed0, 1, 'the last text lexed is remembered');
    two.classify('SELECT 1');
    const lexed1 = lexCounters.texts;
    assert.equal(two.classify(`${sql} `.trimEnd()), second);
    assert.equal(lexCounters.texts - lexed1, 0, 'found under its own text without a lex');
  });

  it('texts with literals are classified as before (values in the text, one parse per shape)', () => {
    const c = new Classifier();
    const a = c.classify("SELECT x FROM t_shape_cache_test WHERE id = 42 AND name = 'bob'");
    const b = c.classify("SELECT x FROM t_shape_cache_test WHERE id = 7 AND name = 'al'");
    assert.equal(a[0]!.text, "SELECT x FROM t_shape_cache_test WHERE id = 42 AND name = 'bob'");
    assert.equal(b[0]!.text, "SELECT x FROM t_shape_cache_test WHERE id = 7 AND name = 'al'");
    assert.deepEqual(b[0]!.objects, a[0]!.objects);
    assert.equal(c.stats.misses, 1);
  });
});
