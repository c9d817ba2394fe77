#!/usr/bin/env -S node --max-semi-space-size=4
'use strict';
// The compiled CLI is produced by `npm run build` (run automatically by `npm ci` via `prepare`).
// --max-semi-space-size=4 (MiB; Node's default grows to 16): the young generation of a proxy holding
// 100,000 routes otherwise keeps ~30 MiB more resident (RSS 169-173 -> 130-136 MiB) for a throughput cost
// within the benchmark's noise (bench/RESULTS.md). `npm start` passes the same flag; so does bench/.
require('../dist/src/cli.js').main(process.argv.slice(2));
