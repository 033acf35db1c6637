export {
  PatternClient,
  METHOD_OPERATIONS,
  type PatternClientOptions,
  type CallOptions,
  type SendOptions,
  type SentRequest,
  type RequestBody,
  type ResultOf,
} from './pattern-client.ts';
export { RequestTimeoutError, ClientClosedError, RequestValidationError } from './errors.ts';
