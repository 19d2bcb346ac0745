// What every command shares: its shape, the exit codes, and the one error that means "called
// wrongly" (exit 2) as opposed to "checked and failed" (exit 1).
import type { ParseArgsConfig } from 'node:util';

/** Exit codes of every command (docs/cli.md). */
export const EXIT = Object.freeze({
  /** Done; for `fetch` and `inspect --trust`: verified. */
  ok: 0,
  /** A verification or a request failed (the reason's code is printed). */
  failure: 1,
  /** Bad arguments, or an input file that cannot be read or is not what the option needs. */
  usage: 2,
});

/**
 * Bad arguments or an unusable input: exit 2. Its message names the option or file, never the
 * content of a file or a secret argument.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parsed options of a command: what `node:util` `parseArgs` returns for its option table. */
export type OptionValues = Record<string, string | boolean | string[] | undefined>;

/** One command: the words that name it, its help, its options and what it does. */
export interface Command {
  /** The words after `oidc2`, e.g. `['keys', 'generate']`. */
  readonly path: readonly string[];
  /** One line for the command list. */
  readonly summary: string;
  /** The full `--help` text. */
  readonly help: string;
  /** The option table for `parseArgs` (`--help` is added to every command). */
  readonly options: NonNullable<ParseArgsConfig['options']>;
  /** How many positional arguments it takes: at least the first, at most the second. */
  readonly positionals: readonly [number, number];
  /** Runs the command and resolves to its exit code; throws {@link UsageError} for bad input. */
  run(values: OptionValues, positionals: string[]): Promise<number>;
}

/** Writes `text` and a newline to stdout. */
export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Writes `text` and a newline to stderr: notes and reports, never a secret. */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Writes `value` as indented JSON to stdout. */
export function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

/** Lines of `label  value`, the labels padded to one width. */
export function table(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  return rows.map(([label, value]) => label.padEnd(width) + value.replaceAll('\n', `\n${' '.repeat(width)}`)).join('\n');
}

/** The value of a string option, or `fallback`. */
export function stringOption(values: OptionValues, name: string, fallback?: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : fallback;
}

/** The value of a string option that must be given. */
export function requiredOption(values: OptionValues, name: string): string {
  const value = stringOption(values, name);
  if (value === undefined || value.length === 0) throw new UsageError(`--${name} is required`);
  return value;
}

/** A whole number option within `[min, max]`, or `fallback`. */
export function integerOption(values: OptionValues, name: string, fallback: number, min: number, max: number): number {
  const text = stringOption(values, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}`);
  return value;
}

/** One of `choices`, or `fallback`. */
export function choiceOption<T extends string>(values: OptionValues, name: string, choices: readonly T[], fallback: T): T {
  const value = stringOption(values, name, fallback)!;
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}`);
  return value as T;
}
