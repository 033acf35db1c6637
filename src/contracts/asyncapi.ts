// The AsyncAPI 3 document, built from the same zod schemas that validate messages, so the two cannot
// drift apart. `npm run asyncapi` writes it to asyncapi.yaml; a test fails when the file is stale.
import { z } from 'zod';
import { ERROR_CODES } from './errors.ts';
import { HEADERS } from './headers.ts';
import { OPERATION_SCHEMAS, OPERATIONS, TOPIC_SPECS, type Operation } from './operations.ts';
import { modelResultSchema } from './results.ts';
import { REPLY_TOPIC, REQUEST_TOPICS } from './topics.ts';

type Json = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-7',
    io,
    unrepresentable: 'any',
  });
  return rest;
}

/** AsyncAPI ids: pattern.search.request -> patternSearchRequest. */
function camel(name: string): string {
  return name.replace(/[._-](\w)/g, (_, c: string) => c.toUpperCase());
}

const bytes = (description: string): Json => ({ type: 'string', description });

const requestHeaders: Json = {
  type: 'object',
  properties: {
    [HEADERS.correlationId]: bytes(
      'Correlation id, opaque bytes echoed unchanged on the result (Spring: 16 raw bytes; NestJS: a UTF-8 string). ' +
        'Identity of the message when the body has no correlation_id.',
    ),
    [HEADERS.replyTopic]: bytes(
      'Publish the result here instead of the result topic, if the reply policy allows it: WORKER_REPLY_TOPICS ' +
        '(comma-separated topic names, * matching any characters), by default every topic in the TOPIC_PREFIX ' +
        "(<prefix>*), or pattern.* without a prefix. The request topic's own result topic is always allowed; the " +
        "worker's request, other result and dead-letter topics, internal (__*) and .dlq topics never are. The topic " +
        'must exist. A refused target: the request is not applied, its VALIDATION_ERROR (naming kafka_replyTopic) ' +
        'goes to the result topic, and it is dead-lettered. A result the broker refuses on the reply topic is ' +
        'replaced by an error result on the result topic and a dead letter.',
    ),
    [HEADERS.replyPartition]: bytes(
      'Partition of the reply topic: a 4-byte big-endian integer (Spring) or a decimal string (NestJS).',
    ),
    [HEADERS.traceparent]: bytes('W3C trace context; the worker continues this trace.'),
    [HEADERS.tracestate]: bytes('W3C trace state.'),
    [HEADERS.deadline]: bytes(
      "The caller's deadline, absolute epoch milliseconds (a decimal string or an 8-byte big-endian integer). " +
        'A read (search, get_*, analytics reads) whose deadline has passed when its turn comes is not run and ' +
        'is answered DEADLINE_EXCEEDED, and one still running then is cancelled in the database and answered ' +
        'DEADLINE_EXCEEDED; writes always run (the header is ignored for them). PatternClient sets ' +
        'it to 80% of its timeout. A malformed value refuses a read by name and is ignored on a write.',
    ),
    [HEADERS.redriveOf]: bytes(
      'Set by `patterns dlq redrive`: topic/partition/offset of the first original message. A message with no ' +
        'correlation id (body or header) takes this as its identity, so a redrive is applied once: only once ' +
        'the consumer group has committed past that offset (waiting up to 2 s); a message naming an offset ' +
        'not yet committed is refused with VALIDATION_ERROR and dead-lettered.',
    ),
    [HEADERS.redriveCount]: bytes('Set by `patterns dlq redrive`: how many times this request was redriven.'),
  },
};

const resultHeaders: Json = {
  type: 'object',
  properties: {
    [HEADERS.correlationId]: bytes(
      "The request's kafka_correlationId bytes, else its body correlation_id as UTF-8.",
    ),
    [HEADERS.contentType]: { type: 'string', const: 'application/json' },
    [HEADERS.traceparent]: bytes("W3C trace context of the worker's producer span."),
    [HEADERS.nestIsDisposed]: bytes('Present (one zero byte) so that a NestJS client observable completes.'),
  },
};

const deadLetterHeaders: Json = {
  type: 'object',
  description:
    "The original message's headers exactly (any name, duplicates in order), plus Spring Kafka's dead-letter " +
    "headers. Where the original had a header of the same name as a dead-letter header, the original's values " +
    "stay and the dead letter's is appended last (Spring reads the last). What a dead letter cannot carry is " +
    'named in the three *-omitted headers.',
  properties: {
    [HEADERS.dltOriginalTopic]: bytes('Topic the message was consumed from.'),
    [HEADERS.dltOriginalPartition]: bytes('Partition, 4-byte big-endian integer.'),
    [HEADERS.dltOriginalOffset]: bytes('Offset, 8-byte big-endian integer.'),
    [HEADERS.dltOriginalTimestamp]: bytes('Timestamp in ms, 8-byte big-endian integer.'),
    [HEADERS.dltOriginalConsumerGroup]: bytes('Consumer group that gave up on it.'),
    [HEADERS.dltExceptionFqcn]: { type: 'string', enum: [...ERROR_CODES], description: 'The error code.' },
    [HEADERS.dltExceptionMessage]: bytes('What was wrong, naming the field.'),
    [HEADERS.dltExceptionCauseFqcn]: bytes(
      'Only on a message given up on after its tries (code INTERNAL; WORKER_MAX_ATTEMPTS, two for a search ' +
        'or analytics request that timed out): the class of the error (StatementTimeout for a timeout).',
    ),
    [HEADERS.deliveryAttempt]: bytes(
      'Only with the header above: the tries made, 4-byte big-endian integer.',
    ),
    [HEADERS.dltKeyOmittedBytes]: bytes(
      'Only when the original key was above WORKER_MAX_KEY_BYTES: its size in bytes (decimal). The dead letter ' +
        'has no key then.',
    ),
    [HEADERS.dltValueOmittedBytes]: bytes(
      'Only when the original value did not fit in a dead letter (about 1 MiB with the headers): its size in ' +
        'bytes (decimal). The dead letter has no value then; the original stays in the request topic.',
    ),
    [HEADERS.dltHeadersOmitted]: bytes(
      'Only when original headers were left out: a JSON array of {name, reason, bytes, values?, name_bytes?, name_hex?} ' +
        '(values: how many of that name, when more than one), reason "too large" (it did not fit beside the ' +
        'value), "too many headers" (beyond the first 4,096) or "dead letter refused" (the full dead letter ' +
        'was refused and this is the bare one). At most 8 KiB; a last {more: n} counts the rest. Every other ' +
        'original header is carried in its order, headers without a value included; one whose name is not UTF-8 ' +
        'is carried under the name Java reads (U+FFFD for each bad byte) and listed here too, reason "name not ' +
        'UTF-8", with name_hex, the name as it was.',
    ),
  },
};

const keyBinding = (description: string) => ({
  kafka: { key: { type: 'string', description }, bindingVersion: '0.5.0' },
});

export function buildAsyncApi(version: string): Json {
  const channels: Json = {};
  const operations: Json = {};
  const messages: Json = {
    result: {
      name: 'ModelResult',
      title: 'Result of an operation',
      summary:
        'success, data, error ({code, message, details}) and metadata (correlation_id, operation, node, duration_ms, duplicate, source).',
      contentType: 'application/json',
      headers: resultHeaders,
      payload: jsonSchema(modelResultSchema, 'output'),
      bindings: keyBinding("The request's key; none when it was above WORKER_MAX_KEY_BYTES."),
    },
    deadLetter: {
      name: 'DeadLetter',
      title: 'A request that could not be applied',
      summary:
        'The original key and value, unchanged, unless too large (see the *-omitted headers): a key above ' +
        'WORKER_MAX_KEY_BYTES is left out, and so is a value that does not fit in a dead letter.',
      headers: deadLetterHeaders,
      payload: {},
    },
  };

  for (const logical of REQUEST_TOPICS) {
    const spec = TOPIC_SPECS[logical];
    const id = camel(logical);
    const requestMessages: Json = {};
    const resultMessages: Json = {};
    for (const operation of spec.operations as readonly Operation[]) {
      const name = `${camel(operation)}Request`;
      const declared = OPERATIONS[operation];
      messages[name] = {
        name,
        title: `${operation} request`,
        summary:
          `${declared.summary[0]?.toUpperCase()}${declared.summary.slice(1)}. A ${declared.kind}, handled by ${spec.node}.` +
          (operation === spec.operations[0] ? ' The default operation of this topic.' : ''),
        contentType: 'application/json',
        headers: requestHeaders,
        payload: jsonSchema(OPERATION_SCHEMAS[operation], 'input'),
        bindings: keyBinding(
          'The pattern id when the request concerns one pattern, so its events keep their order. At most ' +
            'WORKER_MAX_KEY_BYTES (default 256): a longer key is refused (VALIDATION_ERROR naming the key), and its ' +
            'result and dead letter are published without a key.',
        ),
      };
      requestMessages[operation] = { $ref: `#/components/messages/${name}` };
      // Its result, with `data` as the registry declares it.
      const resultName = `${camel(operation)}Result`;
      messages[resultName] = {
        name: resultName,
        title: `${operation} result`,
        summary: `ModelResult of ${operation}; on success, data as below.`,
        contentType: 'application/json',
        headers: resultHeaders,
        payload: jsonSchema(modelResultSchema.extend({ data: declared.result.nullable() }), 'output'),
        bindings: keyBinding("The request's key; none when it was above WORKER_MAX_KEY_BYTES."),
      };
      resultMessages[operation] = { $ref: `#/components/messages/${resultName}` };
    }
    channels[id] = {
      address: logical,
      title: `${logical} requests`,
      description: `Requests for ${spec.node}. Kept forever, so that replay can rebuild the database.`,
      messages: requestMessages,
    };
    channels[`${id}Result`] = {
      address: spec.result,
      title: `${spec.result}`,
      description: `Results of ${logical}, unless the request named a kafka_replyTopic.`,
      messages: resultMessages,
    };
    channels[`${id}Dlq`] = {
      address: `${logical}.dlq`,
      title: `${logical}.dlq`,
      description: `Dead letters of ${logical}.`,
      messages: { deadLetter: { $ref: '#/components/messages/deadLetter' } },
    };
    operations[`apply${id[0]?.toUpperCase()}${id.slice(1)}`] = {
      action: 'receive',
      title: `Apply ${logical}`,
      summary: `The worker applies each request once per identity and publishes a correlated result.`,
      channel: { $ref: `#/channels/${id}` },
      messages: Object.keys(requestMessages).map((op) => ({ $ref: `#/channels/${id}/messages/${op}` })),
      reply: {
        address: {
          location: `$message.header#/${HEADERS.replyTopic}`,
          description: `kafka_replyTopic when present, else ${spec.result}.`,
        },
        channel: { $ref: `#/channels/${id}Result` },
        messages: Object.keys(resultMessages).map((op) => ({
          $ref: `#/channels/${id}Result/messages/${op}`,
        })),
      },
    };
    operations[`deadLetter${id[0]?.toUpperCase()}${id.slice(1)}`] = {
      action: 'send',
      title: `Dead-letter ${logical}`,
      channel: { $ref: `#/channels/${id}Dlq` },
      messages: [{ $ref: `#/channels/${id}Dlq/messages/deadLetter` }],
    };
  }
  channels.patternReply = {
    address: REPLY_TOPIC,
    title: REPLY_TOPIC,
    description:
      'Shared reply topic of PatternClient: each client reads one partition and names it in kafka_replyPartition.',
    messages: { result: { $ref: '#/components/messages/result' } },
  };

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'pattern-worker',
      version,
      description:
        'Event-driven Pattern Learning Engine worker. Requests on four topics are applied to PostgreSQL by four ' +
        'effect nodes, exactly once per message identity, and answered with a correlated ModelResult. Every topic ' +
        'name takes the configured TOPIC_PREFIX. Input is normalised before it is applied: every pattern id ' +
        '(pattern_id, data.pattern_id, relationship ids) is lower-cased, as UUIDs compare case-insensitively; ' +
        'text fields refuse control characters (free text keeps tab and line breaks) and names refuse blank ' +
        'values. A message identity (body correlation_id, else the kafka_correlationId header, else its ' +
        'coordinates) is applied once; the same request sent again is answered from the stored result ' +
        '(metadata.duplicate), and a different request under an identity already used gets CONFLICT ' +
        '(details.reason correlation_id_reused) and a dead letter. Late-reply pickup: a caller that timed out ' +
        'asks pattern.search.request operation get_result for the outcome of its request (request_correlation_id, ' +
        'as sent in the body or the kafka_correlationId header, or request_identity); data.status is "applied" ' +
        'with the result first published (data byte for byte, only its ids once older than ' +
        'WORKER_RESULT_RETENTION), "unknown" (not applied yet, failed and dead-lettered, or never received) or ' +
        '"not_stored" (reads are not recorded; say so with request_operation). Generated from the zod schemas in ' +
        'src/contracts; do not edit.',
      license: { name: 'MIT' },
    },
    defaultContentType: 'application/json',
    servers: {
      local: {
        host: '127.0.0.1:9092',
        protocol: 'kafka',
        description: 'Local single-node broker (npm run kafka:start).',
      },
    },
    channels,
    operations,
    components: { messages },
  };
}
