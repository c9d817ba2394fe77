#!/bin/sh
":" //; exec node --max-semi-space-size=8 "$0" "$@"
'use strict';
// Line 2 is read by the shell and is a no-op for Node: the shell replaces itself with node and these flags.
// (`#!/usr/bin/env -S node ...` would say the same where env has -S, a GNU coreutils 8.30 and BSD extension;
// a POSIX shell line runs wherever /bin/sh does.)
// --max-semi-space-size=8 (MiB; Node's default lets the young generation grow to 2 x 16 MiB): a proxy
// holding 100,000 routes stays within 150 MiB RSS at ~1-5 % more CPU under saturation (bench/RESULTS.md).
// `node --max-semi-space-size=N bin/switchboard.js ...` picks another size (line 2 is then not run;
// NODE_OPTIONS cannot override a flag given there). --workers forks inherit it.
// The compiled CLI is produced by `npm run build` (run automatically by `npm ci` via `prepare`).
require('../dist/src/cli.js').main(process.argv.slice(2));
