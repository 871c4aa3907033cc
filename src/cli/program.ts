// The pgwarden command: `up` runs the platform; every other verb is a thin client of the API.
// Every command is declared up front from light modules (commander and src/cli); what is heavy is
// loaded with `await import()` only by the command that runs it (`up` and `gateway`: the platform,
// through the runners app/main.ts passes in; `threat sql-check`: the detector); an API command
// loads commander and ~20 small modules, no more.
// test/integration/cli-startup.test.ts fails if a thin command loads the platform again.
import { Command, Option } from 'commander';
import { PLATFORM_COMMANDS, gatewayCommand, loadPlatformFlags, upCommand, type PlatformRunners } from './up.js';
import { serverCommand } from './server-commands.js';
import { caCommand, tokenCommand } from './platform-commands.js';
import { accessCommand, networkCommand } from './network-commands.js';
import { ApiError } from './api-client.js';
import { auditCommand } from './audit-commands.js';
import { alertCommand, threatCommand } from './threat-commands.js';
import { backupCommand } from './backup-commands.js';

export type { PlatformRunner, PlatformRunners } from './up.js';

/** Every command; `up` and `gateway` run what `runners` gives them. */
export function buildProgram(runners: PlatformRunners): Command {
  const program = new Command('pgwarden')
    .description('A security perimeter for self-hosted PostgreSQL')
    .option('--data-dir <dir>', 'platform data dir (or PGWARDEN_DATA_DIR; default ./.pgwarden)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .showHelpAfterError()
    .enablePositionalOptions(false)
    .hook('preSubcommand', async (_program, sub) => {
      if (PLATFORM_COMMANDS.includes(sub.name())) await loadPlatformFlags();
    });

  program.addCommand(upCommand(runners.up));
  program.addCommand(gatewayCommand(runners.gateway));
  program.addCommand(serverCommand());
  program.addCommand(tokenCommand());
  program.addCommand(caCommand());
  program.addCommand(auditCommand());
  program.addCommand(alertCommand());
  program.addCommand(threatCommand());
  program.addCommand(backupCommand());
  program.addCommand(networkCommand());
  program.addCommand(accessCommand());
  return program;
}

/** Commands that run until stopped: they shut down their servers on a signal, never on a closed pipe. */
const RUN_UNTIL_STOPPED = new Set(['up', 'gateway']);

/** Parses `argv` and runs the command; an error is one line on stderr and exit code 1. */
export function runProgram(program: Command, argv: readonly string[]): void {
  program.hook('preAction', (_, action) => {
    if (RUN_UNTIL_STOPPED.has(action.name()) && action.parent === program) return;
    // A reader that stops early (`pgwarden audit export | head`): the rest of the output has
    // nowhere to go. Stop quietly, as other command-line tools do, not with a stack trace.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  });
  program.parseAsync([...argv]).catch((err: unknown) => {
    if (err instanceof ApiError) process.stderr.write(`Error (${err.status} ${err.code}): ${err.message}\n`);
    else process.stderr.write(`Error: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
