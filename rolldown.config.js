// The worker and CLI as one bundle (dist/bundle/patterns.js), built from tsc's output by `npm run build`.
// Loading some 960 JavaScript files cost a starting worker about a third of its 1 s of CPU; a new worker in a
// deploy spends that beside the workers still serving (README, "Why the worker runs as a bundle").
// Left out, and loaded from node_modules as usual:
// - packages that read files beside their own modules: the WebAssembly of @platformatic/wasm-utils,
//   pino's transport workers, and the .proto files of the OTLP gRPC exporters;
// - pg-native, which pg tries only when asked to.
// The chunks stay two levels below the root, as dist/db/ is, so that migrate finds ../../sql/.
export default {
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
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
  },
};
