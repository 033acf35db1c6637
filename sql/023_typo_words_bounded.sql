-- pattern_typo_tsquery (021) searched the vocabulary for every word of the query that no name holds. A
-- query is at most 31 parts, but one part can hold a hundred words ("/v10000/v10370/..." is a single
-- file-path lexeme): 0.03-0.6 s of database CPU for one search on 100,000 patterns, paid again on each
-- page, and for nothing: ts_rewrite replaces whole lexemes, so a word inside another lexeme can never be
-- corrected. Only the query's own lexemes are looked up now, at most about 16 in 31 parts; the
-- corrections are the ones 021 made.
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
             WHERE w <> ''
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
