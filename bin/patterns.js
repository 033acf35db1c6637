#!/usr/bin/env node
// Runs the TypeScript source directly: Node 24 strips types, so there is no build step to forget.
import '../src/cli/main.ts';
