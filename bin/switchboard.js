#!/usr/bin/env -S node --max-semi-space-size=8
'use strict';
// --max-semi-space-size=8 (MiB; Node's default lets the young generation grow to 2 x 16 MiB): a proxy
// holding 100,000 routes stays within 150 MiB RSS at ~1-5 % more CPU under saturation (bench/RESULTS.md).
// `node --max-semi-space-size=N bin/switchboard.js ...` picks another size (the shebang is then not read;
// NODE_OPTIONS cannot override a flag given here). --workers forks inherit it.
// The compiled CLI is produced by `npm run build` (run automatically by `npm ci` via `prepare`).
require('../dist/src/cli.js').main(process.argv.slice(2));
