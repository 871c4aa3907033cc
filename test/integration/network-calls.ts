// Shared by the network control-plane tests (network-api, network-access): a platform with the
// servers net-a and net-b, and the CLI and API calls they assert with.
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform, type CliResult } from '../helpers/platform.js';

export const PASSWORD = 'Str0ng-Passw0rd!';

/** A test platform with the two servers the network tests use. */
export async function startNetworkPlatform(): Promise<TestPlatform> {
  const t = await startTestPlatform();
  await Promise.all([
    t.api('POST', '/servers', { name: 'net-a', administratorLogin: 'alice', administratorLoginPassword: PASSWORD }),
    t.api('POST', '/servers', { name: 'net-b', administratorLogin: 'bob', administratorLoginPassword: PASSWORD }),
  ]);
  return t;
}

/** The calls of a test file, on the platform its before() started. */
export function networkCalls(platform: () => TestPlatform) {
  const cli = (args: string[], env?: Record<string, string>): Promise<CliResult> => platform().cli(args, env);

  async function ok(args: string[]): Promise<string> {
    const r = await cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  async function json<T = Record<string, unknown>>(args: string[]): Promise<T> {
    return JSON.parse(await ok([...args, '-o', 'json'])) as T;
  }

  async function fails(args: string[], status: number, message: RegExp): Promise<void> {
    const r = await cli(args);
    assert.equal(r.code, 1, `${args.join(' ')} should fail: ${r.stdout}`);
    assert.match(r.stderr, new RegExp(`\\(${status} `), args.join(' '));
    assert.match(r.stderr, message, args.join(' '));
  }

  /** An API refusal with its status and message. */
  async function refused(method: string, route: string, body: unknown, status: number, message: RegExp): Promise<void> {
    const r = await platform().apiStatus(method, route, body);
    assert.equal(r.status, status, `${method} ${route}: ${JSON.stringify(r.body)}`);
    assert.match((r.body as { error: { message: string } }).error.message, message, `${method} ${route}`);
  }

  /** A refusal by the CLI itself, before any API call changes anything. */
  async function failsInCli(args: string[], message: RegExp): Promise<void> {
    const r = await cli(args);
    assert.equal(r.code, 1, `${args.join(' ')} should fail: ${r.stdout}`);
    assert.match(r.stderr, message);
  }

  return { cli, ok, json, fails, refused, failsInCli };
}
