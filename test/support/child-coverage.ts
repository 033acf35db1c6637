// Worker and CLI processes started by tests run the real source outside Vitest; with coverage on they
// write V8 coverage here, and scripts/coverage-merge.ts adds it to Vitest's report.
export function childCoverageEnv(): Record<string, string> {
  const dir = process.env.CHILD_COVERAGE_DIR;
  return dir ? { NODE_V8_COVERAGE: dir } : {};
}
