export * from './errors.ts';
export * from './fields.ts';
export * from './topics.ts';
export * from './requests.ts';
export * from './results.ts';
export * from './headers.ts';
export * from './decode.ts';
export * from './result-data.ts';
