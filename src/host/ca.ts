// The platform CA: created on first `up`, its key readable only by the platform. It signs the
// API's certificate and the gateway's (the domain, its wildcard and each server's host name).
import 'reflect-metadata'; // @peculiar/x509 needs it loaded first
import { webcrypto, createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';
import type { PlatformPaths } from './paths.js';
import { writeSecretFile } from './secrets.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface CertificateAndKey {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface PlatformCa extends CertificateAndKey {
  readonly cert: x509.X509Certificate;
  readonly key: webcrypto.CryptoKey;
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, EC, true, ['sign']);
}

export async function loadOrCreateCa(paths: PlatformPaths, commonName = 'pgwarden platform CA'): Promise<PlatformCa> {
  if (existsSync(paths.caCert) && existsSync(paths.caKey)) {
    const certPem = readFileSync(paths.caCert, 'utf8');
    const keyPem = readFileSync(paths.caKey, 'utf8');
    return { certPem, keyPem, cert: new x509.X509Certificate(certPem), key: await importKeyPem(keyPem) };
  }
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    name: `CN=${commonName}, O=pgwarden`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 10 * 365 * DAY),
    signingAlgorithm: SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = cert.toString('pem');
  const keyPem = await exportKeyPem(keys.privateKey);
  mkdirSync(paths.caDir, { recursive: true, mode: 0o755 });
  writeSecretFile(paths.caKey, keyPem);
  writeFileSync(paths.caCert, certPem, { mode: 0o644 });
  return { certPem, keyPem, cert, key: keys.privateKey };
}

export interface LeafRequest {
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly days?: number;
  /** Keep this key (PKCS#8 PEM, ECDSA P-256) instead of making a new one: a certificate
   * reissued for more names, with the key every process already holds. */
  readonly keyPem?: string;
}

/** Issues a TLS server certificate signed by the CA (ECDSA P-256, SHA-256). */
export async function issueServerCertificate(ca: PlatformCa, req: LeafRequest): Promise<CertificateAndKey> {
  const keys = req.keyPem ? await importKeyPair(req.keyPem) : ((await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair);
  const now = Date.now();
  const names: x509.JsonGeneralName[] = [
    ...req.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...(req.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    subject: `CN=${req.commonName}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + (req.days ?? 397) * DAY),
    signingAlgorithm: SIGN,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: req.keyPem ?? (await exportKeyPem(keys.privateKey)) };
}

async function importKeyPair(keyPem: string): Promise<webcrypto.CryptoKeyPair> {
  const spki = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  return {
    privateKey: await importKeyPem(keyPem),
    publicKey: await webcrypto.subtle.importKey('spki', spki, EC, true, ['verify']),
  };
}
