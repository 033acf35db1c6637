-- The typo correction looks each unknown word of a query up in the vocabulary by trigram similarity.
-- The vocabulary's trigram index took new words into its pending list (GIN's fast update), which only a
-- vacuum merges, and every lookup read the whole list: after the benchmark's 100,000 names the list held
-- all 4,813 words, and a search of 16 unknown 30-letter words spent 230 ms of database CPU in the
-- correction (3-7 ms with the list merged); a 500-letter word, up to 0.5 s on a loaded host. New words are
-- few once the vocabulary has the usual ones, so the index takes them at once now. Words longer than 64
-- characters are not looked up at all (no name word is that long: 13 letters at most in the benchmark's
-- names), which bounds a lookup however the planner reads the vocabulary.
ALTER INDEX idx_pattern_name_words_trgm SET (fastupdate = off);
SELECT gin_clean_pending_list('idx_pattern_name_words_trgm'::regclass);

CREATE OR REPLACE FUNCTION pattern_typo_tsquery(query text, max_nodes integer) RETURNS tsquery
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
      FROM (SELECT w, plainto_tsquery('english', w) AS target, min(at) AS first_at
              FROM regexp_split_to_table(lower(query), '[^[:alnum:]]+') WITH ORDINALITY AS t(w, at)
             WHERE w <> '' AND length(w) <= 64
             GROUP BY w) AS words
     WHERE numnode(target) > 0
       AND corrected @> target
       AND NOT EXISTS (SELECT 1 FROM pattern_name_words n WHERE n.word = words.w)
     ORDER BY first_at
  LOOP
    CONTINUE WHEN fix.alternatives IS NULL;
    candidate := ts_rewrite(corrected, fix.target, fix.target || fix.alternatives);
    CONTINUE WHEN numnode(candidate) > max_nodes;
    corrected := candidate;
    changed := true;
  END LOOP;
  RETURN CASE WHEN changed THEN corrected END;
END $$;
