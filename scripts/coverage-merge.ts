// Adds the V8 coverage of worker and CLI child processes (started by the end-to-end tests) to Vitest's
// own report, so the figure counts the code those tests really run. Node runs src/*.ts by stripping
// types in place (same offsets), so the stripped code is parsed and converted the way Vitest converts
// its own coverage (ast-v8-to-istanbul), and the statements line up with Vitest's.
// Usage (after `vitest run --coverage`): node scripts/coverage-merge.ts
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stripTypeScriptTypes } from 'node:module';
import { parse } from 'acorn';
import { convert } from 'ast-v8-to-istanbul';
import libCoverage from 'istanbul-lib-coverage';

const root = fileURLToPath(new URL('..', import.meta.url));
const coverageDir = join(root, 'coverage');
const childrenDir = join(coverageDir, 'children');
const srcPrefix = pathToFileURL(join(root, 'src')).href + '/';

type V8Script = Parameters<typeof convert>[0]['coverage'];

const finalFile = join(coverageDir, 'coverage-final.json');
if (!existsSync(finalFile)) {
  process.stderr.write('coverage-merge: no coverage/coverage-final.json; run vitest with --coverage first\n');
  process.exit(1);
}
const map = libCoverage.createCoverageMap(
  JSON.parse(readFileSync(finalFile, 'utf8')) as libCoverage.CoverageMapData,
);
const vitestLines = map.getCoverageSummary().lines.pct;

// A child killed while V8 writes its report (the crash tests SIGKILL workers) leaves an empty or cut
// file: it is skipped and named, and the figure counts the rest.
function readChildReport(file: string): V8Script[] | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(childrenDir, file), 'utf8')) as { result?: V8Script[] };
    return Array.isArray(parsed.result) ? parsed.result : undefined;
  } catch (error) {
    process.stderr.write(`coverage-merge: skipped coverage/children/${file}: ${(error as Error).message}\n`);
    return undefined;
  }
}

let processes = 0;
let skipped = 0;
for (const file of existsSync(childrenDir) ? readdirSync(childrenDir) : []) {
  if (!file.endsWith('.json')) continue;
  const result = readChildReport(file);
  if (!result) {
    skipped += 1;
    continue;
  }
  processes += 1;
  for (const script of result) {
    if (!script.url.startsWith(srcPrefix) || !script.url.endsWith('.ts')) continue;
    const path = fileURLToPath(script.url);
    const code = stripTypeScriptTypes(readFileSync(path, 'utf8'));
    const ast = parse(code, { ecmaVersion: 'latest', sourceType: 'module', locations: true });
    const data = await convert({ code, ast: ast as never, coverage: script });
    // Keyed by the file path, as Vitest keys its own report.
    for (const fileCoverage of Object.values(data)) map.merge({ [path]: { ...fileCoverage, path } });
  }
}

const summary = map.getCoverageSummary();
writeFileSync(join(coverageDir, 'merged-coverage-summary.json'), JSON.stringify(summary.toJSON(), null, 2));
const pct = (n: number) => `${n.toFixed(2)}%`;
process.stdout.write(
  `Coverage (Vitest + ${processes} worker/CLI processes${skipped ? `, ${skipped} unreadable skipped` : ''}): lines ${pct(summary.lines.pct)} ` +
    `(${summary.lines.covered}/${summary.lines.total}), statements ${pct(summary.statements.pct)}, ` +
    `functions ${pct(summary.functions.pct)}, branches ${pct(summary.branches.pct)}; ` +
    `Vitest alone: lines ${pct(vitestLines)}\n`,
);
