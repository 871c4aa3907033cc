// The pgwarden executable (bin/pgwarden.js): the CLI's commands, with `up` and `gateway` given
// what they run. Those two load the platform with `await import()` when they run, so every other
// command starts on commander and the CLI's own small modules.
import { buildProgram, runProgram } from '../cli/program.js';

const program = buildProgram({
  up: async (o, cmd) => (await import('./up-run.js')).runUp(o, cmd),
  gateway: async (o, cmd) => (await import('./up-run.js')).runGateway(o, cmd),
});
runProgram(program, process.argv);
