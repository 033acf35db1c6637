#!/usr/bin/env node
// In a checkout, runs the TypeScript source directly (Node 24 strips types, so there is no build step to
// forget). The image ships only the compiled JavaScript: the bundle (dist/bundle/, rolldown.config.js),
// which starts on about a third less CPU than the ~960 modules it is made of, and no type stripping at run
// time, which keeps about 28 MiB of RSS out of every worker (bench/ANALYSIS.md, "Memory").
import { existsSync } from 'node:fs';

const candidates = ['../src/cli/main.ts', '../dist/bundle/patterns.js', '../dist/cli/main.js'].map(
  (path) => new URL(path, import.meta.url),
);
const entry = candidates.find((url) => existsSync(url)) ?? candidates[candidates.length - 1];
await import(entry.href);
