#!/usr/bin/env node
// In a checkout, runs the TypeScript source directly (Node 24 strips types, so there is no build step to
// forget). The image ships only the compiled JavaScript (dist/): no type stripping at run time, which
// keeps about 28 MiB of RSS out of every worker (bench/ANALYSIS.md, "Memory").
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
await import(existsSync(source) ? source.href : new URL('../dist/cli/main.js', import.meta.url).href);
