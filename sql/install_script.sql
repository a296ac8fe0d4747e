-- The install script itself: it creates every object afresh (no CREATE OR
-- REPLACE, no IF NOT EXISTS: an object someone made before the extension is
-- an error, never silently taken over).  (test/pgtap/schema.sql checks that
-- every function that runs with its owner's rights fixes its search_path.)
CREATE EXTENSION loyalty;
SELECT c.setting || '/extension/loyalty--' || e.extversion || '.sql' AS script,
       c.setting || '/extension/loyalty--0.11--0.12.sql' AS upgrade
  FROM pg_config c, pg_extension e
 WHERE c.name = 'SHAREDIR' AND e.extname = 'loyalty' \gset
SELECT length(pg_read_file(:'script')) > 100000 AS script_read;
-- no line creates or replaces, or creates only if missing
SELECT n, l
  FROM regexp_split_to_table(pg_read_file(:'script'), E'\n') WITH ORDINALITY AS t (l, n)
 WHERE l ~* '\mor\s+replace\M'
    OR l ~* '\m(table|index|schema|sequence|column|view|type|role|extension|function|procedure|trigger|policy)\s+if\s+not\s+exists\M';
-- (the check finds them: the upgrade scripts replace functions)
SELECT count(*) > 0 AS upgrade_replaces
  FROM regexp_split_to_table(pg_read_file(:'upgrade'), E'\n') AS l
 WHERE l ~* '\mor\s+replace\M';
DROP EXTENSION loyalty;
