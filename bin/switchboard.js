#!/usr/bin/env node
'use strict';
// The compiled CLI is produced by `npm run build` (run automatically by `npm ci` via `prepare`).
require('../dist/src/cli.js').main(process.argv.slice(2));
