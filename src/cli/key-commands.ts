// pgwarden server key create|show|rotate|revalidate|use-system: the key-encryption key of a
// server. The HSM PIN comes from PGWARDEN_PKCS11_PIN or --pin-file, never from the command line.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { contextOf } from './context.js';
import { show } from './output.js';

const FIELDS = ['type', 'kekVersion', 'keyRef', 'status', 'reason', 'lastValidatedAt'];

function readPin(pinFile: string | undefined): string {
  if (pinFile) return readFileSync(pinFile, 'utf8').replace(/\r?\n$/, '');
  const pin = process.env.PGWARDEN_PKCS11_PIN;
  if (!pin) throw new Error('Give the HSM user PIN in the environment variable PGWARDEN_PKCS11_PIN or in a file with --pin-file (never on the command line).');
  return pin;
}

const keysPath = (server: string) => `/servers/${encodeURIComponent(server)}/keys`;

export function addServerKeyCommands(server: Command): void {
  const key = server.command('key').description("the server's key-encryption key (system-managed or a customer key in an HSM)");
  key
    .command('show')
    .requiredOption('--server <server>')
    .action(async (o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Record<string, unknown>>('GET', keysPath(o.server)), FIELDS);
    });
  key
    .command('create')
    .description('use a customer-managed key held in an HSM through PKCS#11 (wrap and unwrap happen inside the HSM)')
    .requiredOption('--server <server>')
    .requiredOption('--pkcs11-module <name>', "the NAME of a PKCS#11 module configured at 'pgwarden up --pkcs11-module NAME=PATH' (see 'server key modules')")
    .requiredOption('--token <label>', 'the token label')
    .requiredOption('--key-label <label>', 'the key object label (AES-256 or RSA)')
    .option('--pin-file <file>', 'a file holding the user PIN (default: $PGWARDEN_PKCS11_PIN)')
    .option('--generate', 'generate an AES-256 key in the token when none has this label')
    .action(async (o: { server: string; pkcs11Module: string; token: string; keyLabel: string; pinFile?: string; generate?: boolean }, c: Command) => {
      const ctx = contextOf(c);
      const body = {
        type: 'CustomerManaged',
        // A name; a path (older usage) is sent absolute and accepted only when it is a configured module's.
        pkcs11Module: o.pkcs11Module.includes('/') ? path.resolve(o.pkcs11Module) : o.pkcs11Module,
        tokenLabel: o.token,
        keyLabel: o.keyLabel,
        pin: readPin(o.pinFile),
        createIfMissing: o.generate ?? false,
      };
      show(ctx.output, await ctx.call<Record<string, unknown>>('PUT', keysPath(o.server), body), FIELDS);
    });
  key
    .command('modules')
    .description('the PKCS#11 modules configured on the platform, by name')
    .action(async (_o: unknown, c: Command) => {
      const ctx = contextOf(c);
      const r = await ctx.call<{ value: Record<string, unknown>[] }>('GET', '/pkcs11Modules');
      show(ctx.output, r.value, ['name']);
    });
  key
    .command('use-system')
    .description('go back to the system-managed key')
    .requiredOption('--server <server>')
    .action(async (o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Record<string, unknown>>('PUT', keysPath(o.server), { type: 'SystemManaged' }), FIELDS);
    });
  key
    .command('rotate')
    .description('re-wrap the data keys under a new KEK version (no data is re-encrypted)')
    .requiredOption('--server <server>')
    .option('--key-label <label>', 'customer-managed: move to this key in the same token')
    .action(async (o: { server: string; keyLabel?: string }, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Record<string, unknown>>('POST', `${keysPath(o.server)}/rotate`, o.keyLabel ? { keyLabel: o.keyLabel } : {}), FIELDS);
    });
  key
    .command('revalidate')
    .description('bring an Inaccessible server back once its key is usable again')
    .requiredOption('--server <server>')
    .action(async (o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Record<string, unknown>>('POST', `${keysPath(o.server)}/revalidate`, {}), FIELDS);
    });
}
