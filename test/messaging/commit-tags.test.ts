// The topic id a commit carries in its offset metadata (commit-tags.ts): only our own tag, with a topic id
// of the shapes the library prints, is read back; anything else another client wrote is no tag.
import { describe, expect, it } from 'vitest';
import {
  commitMetadataOf,
  knownTopicId,
  topicIdOfCommitMetadata,
} from '../../src/messaging/kafka/commit-tags.ts';

describe('commit tags', () => {
  it('reads back the topic id it wrote', () => {
    for (const id of ['3d25dfd1-5b6e-41a7-994e-eefd07631295', 'PUq5dQ9dTTe1uzbbmDXSpA']) {
      expect(topicIdOfCommitMetadata(commitMetadataOf(id))).toBe(id);
    }
  });

  it("takes no other client's metadata, and no malformed id, as a tag", () => {
    for (const metadata of [
      null,
      undefined,
      '',
      '3d25dfd1-5b6e-41a7-994e-eefd07631295',
      'pattern-worker topic-id=',
      'pattern-worker topic-id=not an id',
      `pattern-worker topic-id=3d25dfd1-5b6e-41a7-994e-eefd07631295 and more`,
      `pattern-worker topic-id=${'a'.repeat(4000)}`,
    ]) {
      expect(topicIdOfCommitMetadata(metadata)).toBeUndefined();
    }
  });

  it('knows no topic id where the broker answers with the zero UUID', () => {
    expect(knownTopicId('00000000-0000-0000-0000-000000000000')).toBeUndefined();
    expect(knownTopicId('AAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
    expect(knownTopicId(undefined)).toBeUndefined();
    expect(knownTopicId('3d25dfd1-5b6e-41a7-994e-eefd07631295')).toBe('3d25dfd1-5b6e-41a7-994e-eefd07631295');
  });
});
