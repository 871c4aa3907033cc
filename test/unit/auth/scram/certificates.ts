// Test certificates, generated fresh with @peculiar/x509 (WebCrypto): DER, PEM and private key.

import 'reflect-metadata'; // @peculiar/x509 needs it loaded first
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface TestCertificate {
  readonly der: Buffer;
  readonly certPem: string;
  readonly keyPem: string;
  /** The signature algorithm as @peculiar/x509 reads it back, e.g. { name: 'ECDSA', hash: 'SHA-384' }. */
  readonly signature: { readonly name: string; readonly hash?: string };
}

export type CertificateKind =
  | 'ecdsa-p256-sha256'
  | 'ecdsa-p384-sha384'
  | 'ecdsa-p521-sha512'
  | 'rsa-sha1'
  | 'rsa-sha256'
  | 'rsa-sha384'
  | 'rsa-sha512'
  | 'rsa-pss-sha256'
  | 'rsa-pss-sha384'
  | 'ed25519';

type Alg = { name: string } & Record<string, unknown>;

function algorithms(kind: CertificateKind): { key: Alg; sign: Alg } {
  const rsa = (name: string, hash: string) => ({
    key: { name, hash, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) },
    sign: name === 'RSA-PSS' ? { name, hash, saltLength: hash === 'SHA-256' ? 32 : 48 } : { name, hash },
  });
  switch (kind) {
    case 'ecdsa-p256-sha256':
      return { key: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } };
    case 'ecdsa-p384-sha384':
      return { key: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' } };
    case 'ecdsa-p521-sha512':
      return { key: { name: 'ECDSA', namedCurve: 'P-521' }, sign: { name: 'ECDSA', hash: 'SHA-512' } };
    case 'rsa-sha1':
      return rsa('RSASSA-PKCS1-v1_5', 'SHA-1');
    case 'rsa-sha256':
      return rsa('RSASSA-PKCS1-v1_5', 'SHA-256');
    case 'rsa-sha384':
      return rsa('RSASSA-PKCS1-v1_5', 'SHA-384');
    case 'rsa-sha512':
      return rsa('RSASSA-PKCS1-v1_5', 'SHA-512');
    case 'rsa-pss-sha256':
      return rsa('RSA-PSS', 'SHA-256');
    case 'rsa-pss-sha384':
      return rsa('RSA-PSS', 'SHA-384');
    case 'ed25519':
      return { key: { name: 'Ed25519' }, sign: { name: 'Ed25519' } };
  }
}

export async function makeCertificate(kind: CertificateKind, commonName = 'localhost'): Promise<TestCertificate> {
  const { key, sign } = algorithms(kind);
  const keys = (await webcrypto.subtle.generateKey(key, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${commonName}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: sign,
    keys,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: commonName }])],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const readBack = cert.signatureAlgorithm as { name: string; hash?: { name: string } };
  return {
    der: Buffer.from(cert.rawData),
    certPem: cert.toString('pem'),
    keyPem: `-----BEGIN PRIVATE KEY-----\n${pkcs8
      .toString('base64')
      .match(/.{1,64}/g)!
      .join('\n')}\n-----END PRIVATE KEY-----\n`,
    signature: { name: readBack.name, ...(readBack.hash ? { hash: readBack.hash.name } : {}) },
  };
}
