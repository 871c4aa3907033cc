// A composition stops its parts in the order it lists them, skips the ones it never started, and
// goes on past a part that fails to stop (a half-stopped platform leaves servers running).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { stopInOrder, type Part } from '../../../src/app/parts.js';
import { apiUrl } from '../../../src/app/api-part.js';
import { defaultOptions } from '../../../src/app/options.js';

it('stops every started part in the listed order, past one that fails', async () => {
  const stopped: string[] = [];
  const part = (name: string, fail = false): Part => ({
    async stop() {
      stopped.push(name);
      if (fail) throw new Error(`${name} would not stop`);
    },
  });
  const logged: string[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line).msg) });
  await stopInOrder(log, [
    ['api', part('api')],
    ['gateway', part('gateway', true)],
    ['never started', undefined],
    ['servers', part('servers')],
  ]);
  assert.deepEqual(stopped, ['api', 'gateway', 'servers']);
  assert.deepEqual(logged, ['stopping: gateway']);
});

it('gives the API URL clients on this host use: loopback for a wildcard, the bound port once listening', () => {
  assert.equal(apiUrl({ ...defaultOptions, apiHost: '0.0.0.0', apiPort: 8443 }, undefined), 'https://127.0.0.1:8443');
  assert.equal(apiUrl({ ...defaultOptions, apiHost: '::', apiPort: 8443 }, undefined), 'https://[::1]:8443');
  assert.equal(apiUrl({ ...defaultOptions, apiHost: '10.0.0.5', apiPort: 9000 }, undefined), 'https://10.0.0.5:9000');
});
