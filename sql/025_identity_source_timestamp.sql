-- A message without a correlation id is known by its coordinates (off:<topic>/<partition>/<offset>). A topic
-- deleted and created again reuses them: a new message at the coordinates of one applied before was taken
-- for its duplicate and never applied. The record now keeps the Kafka timestamp of the message whose own
-- coordinates the identity names; a later message there with another timestamp is another message and takes
-- the identity off:<topic>/<partition>/<offset>@<timestamp> (src/nodes/identity-store.ts). Records written
-- before (null here) match any message at their coordinates, as they did. Nullable without a default: no
-- table rewrite however many records there are.
ALTER TABLE processed_messages ADD COLUMN source_timestamp bigint;
