#!/bin/sh
":" //; MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} exec node --max-semi-space-size=8 --heap-growing-percent=20 --liftoff-only "$0" "$@"
'use strict';
// Line 2 is read by the shell and is a no-op for Node: the shell replaces itself with node and these flags.
// (`#!/usr/bin/env -S node ...` would say the same where env has -S, a GNU coreutils 8.30 and BSD extension;
// a POSIX shell line runs wherever /bin/sh does.)
// The flags keep a proxy holding 100,000 routes within 150 MiB RSS (docs/BENCHMARKS.md; bench/RESULTS.md):
// --max-semi-space-size=8 (MiB; Node's default lets the young generation grow to 2 x 16 MiB), ~1-5 % more
// CPU under saturation. --heap-growing-percent=20: after a large table load V8 put the next full GC so far
// out that the old generation grew with garbage promoted under load (~1 MiB/s at 14,000 requests/s, 160 ->
// 200 MiB RSS in a minute); 20 % over the live heap holds it at ~146 MiB, a full GC every few seconds.
// --liftoff-only: undici's HTTP parser is WebAssembly, and V8's optimizing tier compiling it took a 30-35
// MiB burst of memory on the first requests; the baseline compiler parses as fast for this proxy.
// MALLOC_ARENA_MAX=2 (unless set): glibc's per-thread malloc arenas held 4-6 MiB more RSS for V8's and
// libuv's threads; no CPU difference measured.
// `node --max-semi-space-size=N bin/switchboard.js ...` picks other flags (line 2 is then not run;
// NODE_OPTIONS cannot override a flag given there). --workers forks inherit them.
// The compiled CLI is produced by `npm run build` (run automatically by `npm ci` via `prepare`).
require('../dist/src/cli.js').main(process.argv.slice(2));
