CREATE TABLE pattern_relationships (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- A relationship means nothing without both ends: deleting either pattern deletes it.
  source_pattern_id uuid NOT NULL REFERENCES pattern_templates (id) ON DELETE CASCADE,
  target_pattern_id uuid NOT NULL REFERENCES pattern_templates (id) ON DELETE CASCADE,
  relationship_type text NOT NULL
    CHECK (relationship_type IN ('similar', 'extends', 'conflicts', 'requires', 'replaces', 'complements', 'uses')),
  strength numeric NOT NULL DEFAULT 1 CHECK (strength BETWEEN 0 AND 1),
  description text,
  context jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pattern_relationships_unique UNIQUE (source_pattern_id, target_pattern_id, relationship_type),
  CONSTRAINT pattern_relationships_no_self CHECK (source_pattern_id <> target_pattern_id)
);
CREATE INDEX idx_relationships_target ON pattern_relationships (target_pattern_id, relationship_type);
CREATE INDEX idx_relationships_source_strength ON pattern_relationships (source_pattern_id, strength DESC);
