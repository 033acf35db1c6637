-- The typo stage corrects words before it falls back to names like the query. It used to take the first
-- 20 names whose trigrams were like the whole query's, in whatever order the plan met them: on 100,000
-- patterns "poled config" answered DebouncedConfigReaderPattern and the like, not one of the PooledConfig
-- names, and 254 of the benchmark's 416 misspelt queries had better names left out. Ranking every such
-- name instead is unbounded ("poled template": 18,865 names, 0.96 s).
--
-- The vocabulary is every word of every pattern name, kept as patterns are written: a handful of words
-- per insert, never updated, so no row is hot. A word whose pattern is deleted or renamed stays; it can
-- only add an alternative that full text then fails to match. It is a function of the names written, so a
-- replay rebuilds it. Words are letters and digits only (name_text split at anything else, as the query's
-- words are): an alternative goes into to_tsquery, where a name's punctuation ("it's", "a|b", "f(x)")
-- would be syntax.
CREATE TABLE pattern_name_words (
  word text PRIMARY KEY CHECK (word ~ '^[[:alnum:]]+$')
);
CREATE INDEX idx_pattern_name_words_trgm ON pattern_name_words USING gin (word gin_trgm_ops);

-- The one place names become words: the triggers and the back-fill below all add through it. Words in
-- one order in every transaction: two batches that both bring new words wait for each other at most,
-- never in a cycle.
CREATE FUNCTION pattern_name_words_add(name_texts text[]) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO pattern_name_words (word)
  SELECT DISTINCT w FROM unnest(name_texts) AS n, LATERAL regexp_split_to_table(n, '[^[:alnum:]]+') AS w
   WHERE w <> ''
   ORDER BY w
  ON CONFLICT (word) DO NOTHING
$$;

CREATE FUNCTION pattern_name_words_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pattern_name_words_add(ARRAY(SELECT name_text FROM written));
  RETURN NULL;
END $$;

CREATE TRIGGER pattern_name_words_on_insert
  AFTER INSERT ON pattern_templates
  REFERENCING NEW TABLE AS written
  FOR EACH STATEMENT EXECUTE FUNCTION pattern_name_words_on_insert();

-- A rename, one row at a time (a column list cannot take a transition table; usage statistics updates,
-- which never set pattern_name, do not fire it).
CREATE FUNCTION pattern_name_words_on_rename() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pattern_name_words_add(ARRAY[NEW.name_text]);
  RETURN NULL;
END $$;

CREATE TRIGGER pattern_name_words_on_rename
  AFTER UPDATE OF pattern_name ON pattern_templates
  FOR EACH ROW WHEN (OLD.pattern_name IS DISTINCT FROM NEW.pattern_name)
  EXECUTE FUNCTION pattern_name_words_on_rename();

SELECT pattern_name_words_add(ARRAY(SELECT name_text FROM pattern_templates));

-- The query with each word that no name holds replaced by itself or the (at most three) name words most
-- like it; words kept where they are (exclusions, phrases, ORs), the query's own words included, so a
-- word found only in descriptions still matches there. NULL when no word needed or found a correction.
-- Stopwords and words without letters or digits are skipped before the vocabulary is searched. A
-- correction that would take the query past max_nodes parts is not made: ranking costs each part a pass
-- over every match (the search refuses queries past that bound for the same reason).
CREATE FUNCTION pattern_typo_tsquery(query text, max_nodes integer) RETURNS tsquery
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  corrected tsquery := websearch_to_tsquery('english', query);
  candidate tsquery;
  changed boolean := false;
  fix record;
BEGIN
  FOR fix IN
    SELECT target,
           (SELECT to_tsquery('english', string_agg(v.word, ' | '))
              FROM (SELECT n.word FROM pattern_name_words n
                     WHERE n.word % words.w
                     ORDER BY n.word <-> words.w, n.word
                     LIMIT 3) AS v) AS alternatives
      FROM (SELECT DISTINCT w, plainto_tsquery('english', w) AS target
              FROM regexp_split_to_table(lower(query), '[^[:alnum:]]+') AS w
             WHERE w <> '') AS words
     WHERE numnode(target) > 0
       AND NOT EXISTS (SELECT 1 FROM pattern_name_words n WHERE n.word = words.w)
  LOOP
    CONTINUE WHEN fix.alternatives IS NULL;
    candidate := ts_rewrite(corrected, fix.target, fix.target || fix.alternatives);
    CONTINUE WHEN numnode(candidate) > max_nodes;
    corrected := candidate;
    changed := true;
  END LOOP;
  RETURN CASE WHEN changed THEN corrected END;
END $$;
