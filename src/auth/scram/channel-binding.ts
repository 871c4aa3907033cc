// tls-server-end-point channel binding (RFC 5929 section 4.1): the hash of the server's DER
// certificate, with the hash function of the certificate's signature algorithm, SHA-256 when that
// is MD5 or SHA-1. The signature algorithm is read with a minimal, bounds-checked DER walk:
// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm AlgorithmIdentifier, ... }
//
// Signature schemes without a separate digest (Ed25519, Ed448) have no tls-server-end-point value:
// RFC 5929 defines none, and PostgreSQL agrees. Its server (be_tls_get_certificate_hash in
// be-secure-openssl.c) and libpq (pgtls_get_peer_certificate_hash in fe-secure-openssl.c) ask
// OpenSSL for the signature's digest (X509_get_signature_info / OBJ_find_sigid_algs), get
// NID_undef for Ed25519, and fail with "could not find digest for NID UNDEF" (also reported in
// github.com/jbg/tokio-postgres-rustls/issues/37). So channelBindingHash() returns null for them
// and the gateway must not offer SCRAM-SHA-256-PLUS with such a certificate. (node-postgres maps
// Ed25519 to SHA-512, which no PostgreSQL server accepts.)

import { createHash } from 'node:crypto';
import { ScramError } from './scram-error.js';

export interface ChannelBinding {
  readonly type: 'tls-server-end-point';
  readonly data: Buffer;
}

export type CertificateHash = 'sha224' | 'sha256' | 'sha384' | 'sha512' | 'sha512-224' | 'sha512-256';

/** Signature algorithm OID -> digest, for algorithms whose digest is in the OID. */
const SIGNATURE_DIGESTS: ReadonlyMap<string, string> = new Map([
  ['1.2.840.113549.1.1.4', 'md5'], // md5WithRSAEncryption
  ['1.2.840.113549.1.1.5', 'sha1'], // sha1WithRSAEncryption
  ['1.2.840.113549.1.1.14', 'sha224'],
  ['1.2.840.113549.1.1.11', 'sha256'],
  ['1.2.840.113549.1.1.12', 'sha384'],
  ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.2.840.113549.1.1.15', 'sha512-224'],
  ['1.2.840.113549.1.1.16', 'sha512-256'],
  ['1.2.840.10045.4.1', 'sha1'], // ecdsa-with-SHA1
  ['1.2.840.10045.4.3.1', 'sha224'],
  ['1.2.840.10045.4.3.2', 'sha256'],
  ['1.2.840.10045.4.3.3', 'sha384'],
  ['1.2.840.10045.4.3.4', 'sha512'],
  ['1.2.840.10040.4.3', 'sha1'], // dsa-with-sha1
  ['2.16.840.1.101.3.4.3.1', 'sha224'], // dsa-with-sha224
  ['2.16.840.1.101.3.4.3.2', 'sha256'], // dsa-with-sha256
]);

/** Hash algorithm OIDs, for the hashAlgorithm of RSASSA-PSS parameters. */
const HASH_OIDS: ReadonlyMap<string, string> = new Map([
  ['1.2.840.113549.2.5', 'md5'],
  ['1.3.14.3.2.26', 'sha1'],
  ['2.16.840.1.101.3.4.2.4', 'sha224'],
  ['2.16.840.1.101.3.4.2.1', 'sha256'],
  ['2.16.840.1.101.3.4.2.2', 'sha384'],
  ['2.16.840.1.101.3.4.2.3', 'sha512'],
  ['2.16.840.1.101.3.4.2.5', 'sha512-224'],
  ['2.16.840.1.101.3.4.2.6', 'sha512-256'],
]);

const RSASSA_PSS = '1.2.840.113549.1.1.10';

/**
 * The hash tls-server-end-point uses for this certificate, or null when the signature algorithm
 * has none (Ed25519, Ed448, unknown algorithms). Throws ScramError for a malformed certificate.
 */
export function channelBindingHash(certDer: Buffer): CertificateHash | null {
  const digest = signatureDigest(certDer);
  if (digest === null) return null;
  return digest === 'md5' || digest === 'sha1' ? 'sha256' : (digest as CertificateHash);
}

/** The tls-server-end-point binding data for a server certificate (DER). */
export function tlsServerEndPoint(certDer: Buffer): Buffer {
  const hash = channelBindingHash(certDer);
  if (hash === null) {
    throw new ScramError('channel binding is not supported for this certificate signature algorithm');
  }
  return createHash(hash).update(certDer).digest();
}

function signatureDigest(der: Buffer): string | null {
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== 0x30 || cert.end !== der.length) throw malformed();
  const tbs = readTlv(der, cert.start, cert.end);
  if (tbs.tag !== 0x30) throw malformed();
  const algorithm = readTlv(der, tbs.end, cert.end);
  if (algorithm.tag !== 0x30) throw malformed();
  const oidTlv = readTlv(der, algorithm.start, algorithm.end);
  if (oidTlv.tag !== 0x06) throw malformed();
  const oid = decodeOid(der.subarray(oidTlv.start, oidTlv.end));
  if (oid !== RSASSA_PSS) return SIGNATURE_DIGESTS.get(oid) ?? null;

  // RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] HashAlgorithm DEFAULT sha1, ... }
  if (oidTlv.end === algorithm.end) return 'sha1';
  const params = readTlv(der, oidTlv.end, algorithm.end);
  if (params.tag !== 0x30) throw malformed();
  if (params.start === params.end) return 'sha1';
  const first = readTlv(der, params.start, params.end);
  if (first.tag !== 0xa0) return 'sha1';
  const hashAlgorithm = readTlv(der, first.start, first.end);
  if (hashAlgorithm.tag !== 0x30) throw malformed();
  const hashOid = readTlv(der, hashAlgorithm.start, hashAlgorithm.end);
  if (hashOid.tag !== 0x06) throw malformed();
  return HASH_OIDS.get(decodeOid(der.subarray(hashOid.start, hashOid.end))) ?? null;
}

interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

/** One DER tag-length-value inside [offset, limit). Definite lengths of up to 4 bytes. */
function readTlv(der: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw malformed();
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) throw malformed(); // multi-byte tags never occur here
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > limit) throw malformed();
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i]!;
    start += count;
  }
  const end = start + length;
  if (end > limit) throw malformed();
  return { tag, start, end };
}

function decodeOid(bytes: Buffer): string {
  if (bytes.length === 0 || bytes.length > 64) throw malformed();
  const arcs: number[] = [];
  let value = 0;
  let digits = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if (++digits > 7) throw malformed();
    if ((byte & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        arcs.push(first, value - first * 40);
      } else {
        arcs.push(value);
      }
      value = 0;
      digits = 0;
    }
  }
  if (digits !== 0) throw malformed();
  return arcs.join('.');
}

function malformed(): ScramError {
  return new ScramError('malformed X.509 certificate: cannot read its signature algorithm');
}
