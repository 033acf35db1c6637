-- Pattern templates: the patterns themselves plus statistics kept up to date by update_pattern_stats().

-- "AsyncDatabaseWriterPattern" -> "Async Database Writer Pattern", so full-text search finds words in names.
CREATE FUNCTION pattern_name_words(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(regexp_replace(name, '([a-z0-9])([A-Z])', '\1 \2', 'g'), '[_.:/-]+', ' ', 'g');

-- array_to_string is only STABLE; tags are plain text, so joining them is immutable.
CREATE FUNCTION pattern_tags_text(tags text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_to_string(tags, ' ');

-- The text that trigram search compares against: lower-cased name words and description.
-- Queries must use exactly this expression to hit idx_pattern_templates_search_text_trgm.
CREATE FUNCTION pattern_search_text(name text, description text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN lower(pattern_name_words(name) || ' ' || coalesce(description, ''));

CREATE TABLE pattern_templates (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  pattern_name text NOT NULL CHECK (length(pattern_name) BETWEEN 1 AND 255),
  pattern_type text NOT NULL CHECK (length(pattern_type) BETWEEN 1 AND 100),
  language text NOT NULL CHECK (length(language) BETWEEN 1 AND 50),
  category text,
  template_code text,
  description text,
  example_usage text,
  source text,
  confidence_score numeric CHECK (confidence_score BETWEEN 0 AND 1),
  usage_count bigint NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
  success_count bigint NOT NULL DEFAULT 0 CHECK (success_count >= 0),
  -- NULL while there is no usage: an unknown rate is not 0.5.
  success_rate numeric CHECK (success_rate BETWEEN 0 AND 1),
  avg_quality_improvement numeric CHECK (avg_quality_improvement BETWEEN -1 AND 1),
  avg_execution_time_ms numeric CHECK (avg_execution_time_ms >= 0),
  -- Running sums and sample counts (events that carried the value), so means stay exact as usage arrives.
  quality_sample_count bigint NOT NULL DEFAULT 0,
  quality_improvement_sum numeric NOT NULL DEFAULT 0,
  execution_sample_count bigint NOT NULL DEFAULT 0,
  execution_time_sum numeric NOT NULL DEFAULT 0,
  complexity_score numeric CHECK (complexity_score BETWEEN 0 AND 1),
  maintainability_score numeric CHECK (maintainability_score BETWEEN 0 AND 1),
  performance_score numeric CHECK (performance_score BETWEEN 0 AND 1),
  -- A deleted parent or successor leaves its children in place, unlinked.
  parent_pattern_id uuid REFERENCES pattern_templates (id) ON DELETE SET NULL,
  is_deprecated boolean NOT NULL DEFAULT false,
  deprecated_by_id uuid REFERENCES pattern_templates (id) ON DELETE SET NULL,
  created_by text,
  tags text[] NOT NULL DEFAULT '{}',
  context jsonb NOT NULL DEFAULT '{}',
  discovered_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', pattern_name_words(pattern_name)), 'A') ||
    setweight(to_tsvector('english', pattern_tags_text(tags)), 'A') ||
    setweight(to_tsvector('english', coalesce(description, '')), 'B') ||
    setweight(to_tsvector('english', coalesce(template_code, '')), 'C')
  ) STORED,
  CONSTRAINT pattern_templates_name_language_key UNIQUE (pattern_name, language),
  CONSTRAINT pattern_templates_not_own_parent CHECK (parent_pattern_id <> id),
  CONSTRAINT pattern_templates_not_own_successor CHECK (deprecated_by_id <> id),
  CONSTRAINT pattern_templates_success_le_usage CHECK (success_count <= usage_count)
);

CREATE INDEX idx_pattern_templates_search_vector ON pattern_templates USING gin (search_vector);
CREATE INDEX idx_pattern_templates_search_text_trgm
  ON pattern_templates USING gin (pattern_search_text(pattern_name, description) gin_trgm_ops);
CREATE INDEX idx_pattern_templates_tags ON pattern_templates USING gin (tags);
CREATE INDEX idx_pattern_templates_language_type ON pattern_templates (language, pattern_type);
CREATE INDEX idx_pattern_templates_type ON pattern_templates (pattern_type);
CREATE INDEX idx_pattern_templates_category ON pattern_templates (category);
CREATE INDEX idx_pattern_templates_confidence ON pattern_templates (confidence_score DESC NULLS LAST, id)
  WHERE NOT is_deprecated;
CREATE INDEX idx_pattern_templates_parent ON pattern_templates (parent_pattern_id) WHERE parent_pattern_id IS NOT NULL;
CREATE INDEX idx_pattern_templates_deprecated_by ON pattern_templates (deprecated_by_id) WHERE deprecated_by_id IS NOT NULL;
