import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildScramVerifier, formatScramVerifier, mockVerifier, parseScramVerifier } from '../../../../src/auth/scram/verifier.js';
import { saslprep, scramPasswordBytes } from '../../../../src/auth/scram/saslprep.js';

// The verifier of the RFC 7677 example (password "pencil"); the e2e test checks buildScramVerifier
// against verifiers computed by a real PostgreSQL server.
const PENCIL = 'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=';

describe('parseScramVerifier', () => {
  it('parses a PostgreSQL verifier', () => {
    const v = parseScramVerifier(PENCIL);
    assert.ok(v);
    assert.equal(v.iterations, 4096);
    assert.deepEqual(v.salt, Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'));
    assert.equal(v.storedKey.length, 32);
    assert.equal(v.serverKey.length, 32);
    assert.equal(formatScramVerifier(v), PENCIL);
  });

  it('returns null for MD5, plain text and malformed verifiers', () => {
    const bad = [
      'md5a3556571e93b0d20722ba62be61e8c2d',
      'pencil',
      '',
      PENCIL.replace('SCRAM-SHA-256', 'SCRAM-SHA-1'),
      PENCIL.replace('$4096:', '$0:'),
      PENCIL.replace('$4096:', '$-1:'),
      PENCIL.replace('$4096:', '$99999999999:'),
      PENCIL.replace('$4096:', '$:'),
      PENCIL.replace('W22ZaJ0SNY7soEsUEjb6gQ==', ''),
      PENCIL.replace('W22ZaJ0SNY7soEsUEjb6gQ==', 'W22Z*J0SNY7soEsUEjb6gQ=='),
      PENCIL.slice(0, -4),
      PENCIL + 'AAAA',
      PENCIL.replace(':wfP', 'wfP'),
      PENCIL + '\n',
    ];
    for (const text of bad) assert.equal(parseScramVerifier(text), null, text);
  });
});

describe('buildScramVerifier', () => {
  it('reproduces PostgreSQL’s verifier for a given salt', () => {
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    assert.equal(buildScramVerifier('pencil', { salt, iterations: 4096 }), PENCIL);
  });

  it('defaults to 4096 iterations and a fresh 16-byte salt', () => {
    const a = parseScramVerifier(buildScramVerifier('x'))!;
    const b = parseScramVerifier(buildScramVerifier('x'))!;
    assert.equal(a.iterations, 4096);
    assert.equal(a.salt.length, 16);
    assert.notDeepEqual(a.salt, b.salt);
  });

  it('refuses bad iteration counts and an empty salt', () => {
    assert.throws(() => buildScramVerifier('x', { iterations: 0 }), RangeError);
    assert.throws(() => buildScramVerifier('x', { iterations: 1.5 }), RangeError);
    assert.throws(() => buildScramVerifier('x', { salt: Buffer.alloc(0) }), RangeError);
  });
});

describe('mockVerifier', () => {
  it('is deterministic per server, user name and secret', () => {
    const s1 = Buffer.alloc(32, 1);
    const s2 = Buffer.alloc(32, 2);
    assert.deepEqual(mockVerifier('server-1', 'alice', s1), mockVerifier('server-1', 'alice', s1));
    assert.notDeepEqual(mockVerifier('server-1', 'alice', s1).salt, mockVerifier('server-1', 'alice', s2).salt);
    assert.notDeepEqual(mockVerifier('server-1', 'alice', s1).salt, mockVerifier('server-1', 'bob', s1).salt);
    assert.equal(mockVerifier('server-1', 'alice', s1, { iterations: 10000 }).iterations, 10000);
    assert.throws(() => mockVerifier('server-1', 'alice', Buffer.alloc(8)), RangeError);
    assert.throws(() => mockVerifier('', 'alice', s1), RangeError);
  });

  it('differs from server to server for the same unknown role (W2: no enumeration across servers)', () => {
    const secret = Buffer.alloc(32, 3);
    const a = mockVerifier('server-1', 'nobody', secret);
    const b = mockVerifier('server-2', 'nobody', secret);
    assert.notDeepEqual(a.salt, b.salt);
    assert.notDeepEqual(a.storedKey, b.storedKey);
    assert.equal(a.iterations, b.iterations);
  });

  it('cannot be made to collide by moving characters between the server and the user name', () => {
    const secret = Buffer.alloc(32, 4);
    assert.notDeepEqual(mockVerifier('server-1', '2x', secret).salt, mockVerifier('server-12', 'x', secret).salt);
    assert.notDeepEqual(mockVerifier('a\0b', 'c', secret).salt, mockVerifier('a', 'b\0c', secret).salt);
  });
});

describe('SASLprep (PostgreSQL behaviour)', () => {
  it('RFC 4013 section 3 examples', () => {
    assert.equal(saslprep('I\u00adX'), 'IX'); // soft hyphen mapped to nothing
    assert.equal(saslprep('user'), 'user');
    assert.equal(saslprep('USER'), 'USER');
    assert.equal(saslprep('\u00aa'), 'a'); // NFKC
    assert.equal(saslprep('\u2168'), 'IX'); // NFKC
    assert.equal(saslprep('\u0627\u0031'), null); // bidi: RandALCat must also be last
  });

  it('maps non-ASCII spaces to SPACE and applies NFKC', () => {
    assert.equal(saslprep('a\u00a0b\u3000c'), 'a b c');
    assert.equal(saslprep('ＡＢＣ'), 'ABC');
    assert.equal(saslprep('\ufb01x'), 'fix');
  });

  it('cannot prepare prohibited, unassigned (in Unicode 3.2), empty-after-mapping or bidi-mixed input', () => {
    assert.equal(saslprep('a\u200eb'), null); // C.8 left-to-right mark
    assert.equal(saslprep('\ue000'), null); // C.3 private use
    assert.equal(saslprep('a\u0221'), null); // A.1: unassigned in Unicode 3.2
    assert.equal(saslprep('pass😀'), null); // U+1F600, unassigned in Unicode 3.2
    assert.equal(saslprep('\u00ad'), null); // mapped to nothing: empty
    assert.equal(saslprep('\u05d0a\u05d0'), null); // RandALCat with LCat
    assert.equal(saslprep('\u05d0\u05d1'), '\u05d0\u05d1');
  });

  it('pure ASCII passes unchanged, even control characters (PostgreSQL fast path)', () => {
    assert.equal(saslprep('a\u0007b'), 'a\u0007b');
  });

  it('falls back to the raw bytes when preparation is impossible, as PostgreSQL does', () => {
    assert.deepEqual(scramPasswordBytes('pass😀'), Buffer.from('pass😀', 'utf8'));
    assert.deepEqual(scramPasswordBytes('ＡＢＣ'), Buffer.from('ABC'));
    assert.deepEqual(scramPasswordBytes('ＡＢＣ😀'), Buffer.from('ＡＢＣ😀', 'utf8')); // not NFKC'd: raw
    const invalidUtf8 = Buffer.from([0x70, 0xff, 0x70]);
    assert.equal(saslprep(invalidUtf8), null);
    assert.deepEqual(scramPasswordBytes(invalidUtf8), invalidUtf8);
    assert.equal(saslprep('\ud800x'), null); // lone surrogate
  });
});
