// The `oidc2` command line: finds the command, parses its options with node:util parseArgs, runs it
// and turns what it throws into an exit code and one line on stderr (or a JSON error with --json).
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { isOidc2Error } from '@oidc2/core';
import { isArgumentError } from '@oidc2/core/adapter';
import { apiKeyHash, apiKeyNew } from './commands/api-key.js';
import { fetchCommand } from './commands/fetch.js';
import { ictMint } from './commands/ict.js';
import { inspectCommand } from './commands/inspect.js';
import { keysGenerate } from './commands/keys.js';
import { EXIT, UsageError, note, print, printJson, table, type Command, type OptionValues } from './lib/command.js';

const COMMANDS: readonly Command[] = [keysGenerate, apiKeyHash, apiKeyNew, ictMint, fetchCommand, inspectCommand];

const HELP = `Usage: oidc2 <command> [options]

Commands:
${table(COMMANDS.map((c) => [`  ${c.path.join(' ')}`, c.summary]))}

Run 'oidc2 <command> --help' for a command's options. Documentation: docs/cli.md.

Exit codes:
  0  done (fetch: a verified response; inspect --trust: a verified token)
  1  a verification or request failed; the reason's code is printed
  2  usage: bad arguments, or an input file that cannot be read or does not fit

Options:
  -h, --help     this help
  -v, --version  the version of @oidc2/cli`;

function version(): string {
  return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
}

function usage(message: string, command?: Command): number {
  const name = command ? `oidc2 ${command.path.join(' ')}` : 'oidc2';
  note(`${name}: ${message}\nRun '${name} --help' for usage.`);
  return EXIT.usage;
}

/** The message of an error that is none of ours: its own, and the system error code behind it. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return 'failed';
  if (error.name === 'TimeoutError') return 'no answer within --timeout';
  const cause = (error.cause as { code?: unknown } | undefined)?.code;
  return typeof cause === 'string' ? `${error.message} (${cause})` : error.message;
}

function failure(error: unknown, command: Command, json: boolean): number {
  if (error instanceof UsageError) return usage(error.message, command);
  if (isArgumentError(error)) return usage(`invalid configuration: ${error.message}`, command);
  const code = isOidc2Error(error) ? error.code : 'request_failed';
  const message = isOidc2Error(error) ? error.message : describe(error);
  if (json) printJson({ error: { code, message } });
  else note(`oidc2 ${command.path.join(' ')}: ${code}: ${message}`);
  return EXIT.failure;
}

/** Runs the command line `argv` (without node and the script) and resolves to its exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [first] = argv;
  if (first === undefined) {
    note(HELP);
    return EXIT.usage;
  }
  if (first === '-h' || first === '--help' || first === 'help') {
    print(HELP);
    return EXIT.ok;
  }
  if (first === '-v' || first === '--version') {
    print(version());
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.path.every((word, i) => argv[i] === word));
  if (!command) {
    const group = COMMANDS.filter((c) => c.path.length > 1 && c.path[0] === first);
    if (group.length === 0) return usage(`unknown command '${first}'`);
    const list = table(group.map((c) => [`  ${c.path.join(' ')}`, c.summary]));
    if (argv[1] === undefined || argv[1] === '-h' || argv[1] === '--help') {
      (argv[1] === undefined ? note : print)(`Usage: oidc2 ${first} <command> [options]\n\nCommands:\n${list}`);
      return argv[1] === undefined ? EXIT.usage : EXIT.ok;
    }
    return usage(`unknown command '${first} ${argv[1]}'`);
  }

  let values: OptionValues;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv.slice(command.path.length) as string[],
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    // parseArgs names the option, never its value; its advice on '--' is not needed here.
    return usage((error as Error).message.split('. To specify')[0]!, command);
  }
  if (values.help === true) {
    print(command.help);
    return EXIT.ok;
  }
  const [min, max] = command.positionals;
  // The arguments are not quoted back: one of them may be a token or a key.
  if (positionals.length < min) return usage(`missing argument (${min} expected)`, command);
  if (positionals.length > max) return usage(max === 0 ? 'this command takes no arguments' : `too many arguments (at most ${max})`, command);
  try {
    return await command.run(values, positionals);
  } catch (error) {
    return failure(error, command, values.json === true);
  }
}
