// `pgwarden server update --pool-size N --pool-mode M`: refused before any API call, with the reason.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { CommanderError, type Command } from 'commander';
import { parsePoolSize, poolTableRows } from '../../../src/cli/pool-commands.js';
import { serverCommand } from '../../../src/cli/server-commands.js';

it('--pool-size takes a whole number from 1 to 10000', () => {
  assert.equal(parsePoolSize('1'), 1);
  assert.equal(parsePoolSize('20'), 20);
  assert.equal(parsePoolSize('10000'), 10000);
  for (const bad of ['0', '-1', 'abc', '10001', '1.5', '', ' ', '1e3', '0x10', '20abc', '99999999999999999999']) {
    assert.throws(
      () => parsePoolSize(bad),
      (e: Error) => e.message === `The pool size must be a whole number from 1 to 10000 (got '${bad}').`,
      bad,
    );
  }
});

/** Parses `server update …` as the CLI would, stopping where commander would exit. */
async function parseUpdate(args: string[]): Promise<{ error: CommanderError | null; stderr: string }> {
  const server = serverCommand();
  const update = server.commands.find((c: Command) => c.name() === 'update')!;
  let stderr = '';
  update.exitOverride().configureOutput({ writeErr: (s) => (stderr += s), writeOut: () => undefined });
  // The action would call the API: it must never be reached for a refused value.
  update.action(() => {
    throw new Error('the action ran');
  });
  try {
    await server.parseAsync(['update', 'srv', ...args], { from: 'user' });
    return { error: null, stderr };
  } catch (err) {
    if (err instanceof CommanderError) return { error: err, stderr };
    throw err;
  }
}

it('server update refuses a bad --pool-size or --pool-mode with a clear message and no call', async () => {
  for (const v of ['0', '-1', 'abc', '10001']) {
    const { error, stderr } = await parseUpdate(['--pool-size', v]);
    assert.equal(error?.code, 'commander.invalidArgument', v);
    assert.equal(stderr, `error: option '--pool-size <n>' argument '${v}' is invalid. The pool size must be a whole number from 1 to 10000 (got '${v}').\n`);
  }
  const { error, stderr } = await parseUpdate(['--pool-mode', 'statement']);
  assert.equal(error?.code, 'commander.invalidArgument');
  assert.equal(stderr, "error: option '--pool-mode <mode>' argument 'statement' is invalid. Allowed choices are none, session, transaction.\n");
});

it('server update passes good pool values on as a number and a mode', async () => {
  const server = serverCommand();
  const update = server.commands.find((c: Command) => c.name() === 'update')!;
  let seen: Record<string, unknown> = {};
  update.action((_name: string, o: Record<string, unknown>) => {
    seen = o;
  });
  await server.parseAsync(['update', 'srv', '--pool-mode', 'session', '--pool-size', '50'], { from: 'user' });
  assert.equal(seen.poolMode, 'session');
  assert.equal(seen.poolSize, 50);
});

it('the pool table names its columns as people read them', () => {
  const rows = poolTableRows([
    {
      user: 'app',
      database: 'shop',
      mode: 'transaction',
      clients: 40,
      waiting: 3,
      active: 5,
      idle: 0,
      opening: 1,
      poolSize: 6,
      waits: 17,
      waitMs: 123.6,
      opened: 6,
      reused: 900,
    },
  ]);
  assert.deepEqual(Object.keys(rows[0]!), [
    'user',
    'database',
    'mode',
    'clients',
    'waiting',
    'active',
    'idle',
    'opening',
    'pool size',
    'waits',
    'wait ms',
    'opened',
    'reused',
  ]);
  assert.equal(rows[0]!['wait ms'], 124);
  assert.equal(rows[0]!['pool size'], 6);
});
