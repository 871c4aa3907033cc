// What every API-backed command needs: where the API is, and how to print.
import type { Command } from 'commander';
import { callApi, resolveTarget } from './api-client.js';
import type { OutputFormat } from './output.js';

export interface CliContext {
  readonly output: OutputFormat;
  call<T>(method: string, route: string, body?: unknown): Promise<T>;
}

export function contextOf(cmd: Command): CliContext {
  const opts = cmd.optsWithGlobals<{ dataDir?: string; output?: string }>();
  const output: OutputFormat = opts.output === 'json' ? 'json' : 'table';
  let target: ReturnType<typeof resolveTarget> | null = null;
  return {
    output,
    call: <T>(method: string, route: string, body?: unknown) => {
      target ??= resolveTarget(opts.dataDir);
      return callApi<T>(target, method, route, body);
    },
  };
}
