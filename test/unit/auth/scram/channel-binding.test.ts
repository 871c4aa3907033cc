import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { channelBindingHash, tlsServerEndPoint } from '../../../../src/auth/scram/channel-binding.js';
import { ScramError } from '../../../../src/auth/scram/scram-error.js';
import { makeCertificate, type CertificateKind, type TestCertificate } from './certificates.js';

/** A DER TLV (short or long form length). */
function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const len =
    body.length < 0x80
      ? Buffer.from([body.length])
      : body.length < 0x100
        ? Buffer.from([0x81, body.length])
        : Buffer.from([0x82, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...c: Buffer[]) => der(0x30, ...c);
const oid = (hex: string) => der(0x06, Buffer.from(hex, 'hex'));
const PSS = oid('2a864886f70d01010a');
const SHA384 = oid('608648016503040202');
/** A structurally minimal certificate with the given AlgorithmIdentifier. */
const fakeCert = (algorithm: Buffer) => seq(seq(der(0x02, Buffer.from([1]))), algorithm, der(0x03, Buffer.from([0, 0xff])));

describe('tls-server-end-point', () => {
  const expected: Record<CertificateKind, string | null> = {
    'ecdsa-p256-sha256': 'sha256',
    'ecdsa-p384-sha384': 'sha384',
    'ecdsa-p521-sha512': 'sha512',
    'rsa-sha1': 'sha256', // RFC 5929: SHA-1 is replaced by SHA-256
    'rsa-sha256': 'sha256',
    'rsa-sha384': 'sha384',
    'rsa-sha512': 'sha512',
    'rsa-pss-sha256': 'sha256',
    'rsa-pss-sha384': 'sha384',
    ed25519: null, // no digest: PostgreSQL and libpq refuse channel binding
  };
  const certs = new Map<CertificateKind, TestCertificate>();

  before(async () => {
    for (const kind of Object.keys(expected) as CertificateKind[]) certs.set(kind, await makeCertificate(kind));
  });

  for (const [kind, hash] of Object.entries(expected) as Array<[CertificateKind, string | null]>) {
    it(`${kind} -> ${hash ?? 'no binding'}`, () => {
      const cert = certs.get(kind)!;
      // @peculiar/x509's own reading of the certificate confirms what was generated
      const generated = cert.signature.hash?.toLowerCase().replace('-', '');
      if (hash !== null && kind !== 'rsa-sha1') assert.equal(generated, hash);
      assert.equal(channelBindingHash(cert.der), hash);
      if (hash === null) {
        assert.throws(() => tlsServerEndPoint(cert.der), ScramError);
      } else {
        assert.deepEqual(tlsServerEndPoint(cert.der), createHash(hash).update(cert.der).digest());
      }
    });
  }

  it('RSASSA-PSS with absent parameters or absent hashAlgorithm defaults to SHA-1, hence SHA-256', () => {
    assert.equal(channelBindingHash(fakeCert(seq(PSS))), 'sha256');
    assert.equal(channelBindingHash(fakeCert(seq(PSS, seq()))), 'sha256');
    assert.equal(channelBindingHash(fakeCert(seq(PSS, seq(der(0xa0, seq(SHA384)))))), 'sha384');
  });

  it('unknown signature algorithms have no binding', () => {
    assert.equal(channelBindingHash(fakeCert(seq(oid('2a0304')))), null);
    assert.equal(channelBindingHash(fakeCert(seq(oid('2b6571')))), null); // Ed448 1.3.101.113
  });

  it('malformed DER throws ScramError, never a RangeError', () => {
    const good = fakeCert(seq(oid('2a8648ce3d040302')));
    assert.equal(channelBindingHash(good), 'sha256');
    const cases = [
      Buffer.alloc(0),
      Buffer.from([0x30]),
      Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([0x30, 0x80, 0, 0]), // indefinite length
      good.subarray(0, good.length - 1),
      Buffer.concat([good, Buffer.from([0])]),
      fakeCert(seq(der(0x04, Buffer.from('x')))), // not an OID
      fakeCert(seq(der(0x06, Buffer.from([0x2a, 0x86])))), // unterminated OID arc
      fakeCert(der(0x31, oid('2a'))),
    ];
    for (const input of cases) assert.throws(() => channelBindingHash(input), ScramError, input.toString('hex'));
  });
});
