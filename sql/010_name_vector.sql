-- Full text over names and tags alone, indexed, so that search can rank the patterns whose name or tags
-- match before (and usually instead of) every pattern whose description or template mentions a word:
-- a common word such as "async" is in most templates, and ranking every match cost 40-130 ms on
-- 100,000 patterns.
ALTER TABLE pattern_templates
  ADD COLUMN name_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', pattern_name_words(pattern_name)), 'A') ||
    setweight(to_tsvector('english', pattern_tags_text(tags)), 'A')
  ) STORED;
CREATE INDEX idx_pattern_templates_name_vector ON pattern_templates USING gin (name_vector);

-- Typo search on names alone: a name has a handful of trigrams where name plus description has
-- hundreds, so the trigram index returns far fewer candidates to recheck.
ALTER TABLE pattern_templates
  ADD COLUMN name_text text GENERATED ALWAYS AS (lower(pattern_name_words(pattern_name))) STORED;
CREATE INDEX idx_pattern_templates_name_text_trgm ON pattern_templates USING gin (name_text gin_trgm_ops);
