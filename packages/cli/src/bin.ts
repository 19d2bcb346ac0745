#!/usr/bin/env node
// The `oidc2` executable. The exit code is set, not forced, so stdout is flushed before exit.
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`oidc2: ${error instanceof Error ? error.message : 'failed'}\n`);
    process.exitCode = 1;
  },
);
