// The package's public surface: the request/reply client and the wire contract's schemas and types.
export * from './client/index.ts';
export * from './contracts/index.ts';
