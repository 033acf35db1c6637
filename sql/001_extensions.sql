-- Trigram similarity for fuzzy pattern search.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
