export {
  PatternClient,
  METHOD_OPERATIONS,
  type PatternClientOptions,
  type CallOptions,
  type SendOptions,
  type SentRequest,
  type RequestHeaders,
  type RequestBody,
  type ResultOf,
} from './pattern-client.ts';
export { RequestTimeoutError, ClientClosedError, RequestValidationError } from './errors.ts';
export { kafkaConnection, type KafkaConnection } from '../messaging/kafka/client.ts';
