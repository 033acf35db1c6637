// The worker and CLI as one bundle (dist/bundle/patterns.js), built from tsc's output by `npm run build`.
// Loading some 960 JavaScript files cost a starting worker about a third of its 1 s of CPU; a new worker in a
// deploy spends that beside the workers still serving (README, "Why the worker runs as a bundle").
// Left out, and loaded from node_modules as usual:
// - packages that read files beside their own modules: the WebAssembly of @platformatic/wasm-utils,
//   pino's transport workers, and the .proto files of the OTLP gRPC exporters;
// - pg-native, which pg tries only when asked to.
// The chunks stay two levels below the root, as dist/db/ is, so that migrate finds ../../sql/.

// @platformatic/kafka compiles the JSON schemas of its clients' options with ajv when it is imported, 38 of
// them, some 200 ms of a start's CPU, for validation that runs only for a client created with
// `strict: true` (src/messaging/kafka/client.ts never sets it). In the bundle each validator compiles on
// its first call instead; a validator called behaves as before.
const OPTIONS_MODULE = /@platformatic[\\/]kafka[\\/]dist[\\/]clients[\\/][^\\/]+[\\/]options\.js$/;
const EAGER_COMPILE = '= ajv.compile(';
const lazyOptionValidators = {
  name: 'lazy-option-validators',
  transform(code, id) {
    if (!OPTIONS_MODULE.test(id)) return null;
    if (!code.includes(EAGER_COMPILE)) {
      this.warn(
        `${id}: no "${EAGER_COMPILE}" to make lazy; its schemas compile at start (see rolldown.config.js)`,
      );
      return null;
    }
    return `${code.replaceAll(EAGER_COMPILE, '= lazyCompile(')}
function lazyCompile(schema) {
  let compiled;
  const validate = (data) => {
    compiled ??= ajv.compile(schema);
    const valid = compiled(data);
    validate.errors = compiled.errors;
    return valid;
  };
  validate.errors = null;
  return validate;
}
`;
  },
};

export default {
  plugins: [lazyOptionValidators],
  input: { patterns: 'dist/cli/main.js' },
  platform: 'node',
  external: [
    /^pg-native$/,
    /^@platformatic\/wasm-utils(\/|$)/,
    /^pino(\/|$)/,
    /^pino-pretty(\/|$)/,
    /^@grpc\//,
    /^@opentelemetry\/[^/]*grpc/,
  ],
  output: {
    dir: 'dist/bundle',
    // Chunks of an earlier build would stay beside the new ones, unused.
    cleanDir: true,
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
  },
};
