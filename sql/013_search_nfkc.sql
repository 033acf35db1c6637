-- Search folds compatibility forms (NFKC) as well as case, on the indexed text and on the query (the
-- node normalises the query the same way): "ＡＳＹＮＣ" (full-width) finds what "async" finds. NFKC
-- comes first, so that camelCase splitting sees the folded letters. The stored search columns are
-- dropped and added again, so that every existing row is recomputed with the new functions.
CREATE OR REPLACE FUNCTION pattern_name_words(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(regexp_replace(normalize(name, NFKC), '([a-z0-9])([A-Z])', '\1 \2', 'g'), '[_.:/-]+', ' ', 'g');

CREATE OR REPLACE FUNCTION pattern_tags_text(tags text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN normalize(array_to_string(tags, ' '), NFKC);

CREATE OR REPLACE FUNCTION pattern_search_text(name text, description text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN lower(pattern_name_words(name) || ' ' || normalize(coalesce(description, ''), NFKC));

ALTER TABLE pattern_templates
  DROP COLUMN search_vector,
  DROP COLUMN search_text,
  DROP COLUMN name_vector,
  DROP COLUMN name_text;

ALTER TABLE pattern_templates
  ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', pattern_name_words(pattern_name)), 'A') ||
    setweight(to_tsvector('english', pattern_tags_text(tags)), 'A') ||
    setweight(to_tsvector('english', normalize(coalesce(description, ''), NFKC)), 'B') ||
    setweight(to_tsvector('english', normalize(coalesce(template_code, ''), NFKC)), 'C')
  ) STORED,
  ADD COLUMN search_text text GENERATED ALWAYS AS (pattern_search_text(pattern_name, description)) STORED,
  ADD COLUMN name_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', pattern_name_words(pattern_name)), 'A') ||
    setweight(to_tsvector('english', pattern_tags_text(tags)), 'A')
  ) STORED,
  ADD COLUMN name_text text GENERATED ALWAYS AS (lower(pattern_name_words(pattern_name))) STORED;

CREATE INDEX idx_pattern_templates_search_vector ON pattern_templates USING gin (search_vector);
CREATE INDEX idx_pattern_templates_search_text_trgm ON pattern_templates USING gin (search_text gin_trgm_ops);
CREATE INDEX idx_pattern_templates_name_vector ON pattern_templates USING gin (name_vector);
CREATE INDEX idx_pattern_templates_name_text_trgm ON pattern_templates USING gin (name_text gin_trgm_ops);
