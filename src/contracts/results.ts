// The result envelope (CONTRACT "Result"), the seed's ModelResult.
import { z } from 'zod';
import { ERROR_CODES, type ModelError } from './errors.ts';

export const modelErrorSchema = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const messageSourceSchema = z.object({ topic: z.string(), partition: z.int(), offset: z.string() });
export type MessageSource = z.infer<typeof messageSourceSchema>;

export const resultMetadataSchema = z.looseObject({
  correlation_id: z.string().nullable(),
  operation: z.string(),
  node: z.string(),
  duration_ms: z.number(),
  duplicate: z.boolean().optional(),
  /** On a duplicate answered after WORKER_RESULT_RETENTION: the stored body was pruned to its ids. */
  result_pruned: z.boolean().optional(),
  source: messageSourceSchema.optional(),
});
export type ResultMetadata = z.infer<typeof resultMetadataSchema>;

export const modelResultSchema = z.object({
  success: z.boolean(),
  data: z.unknown().nullable(),
  error: modelErrorSchema.nullable(),
  metadata: resultMetadataSchema,
});

export interface ModelResult<T = unknown> {
  success: boolean;
  data: T | null;
  error: ModelError | null;
  metadata: ResultMetadata;
}
