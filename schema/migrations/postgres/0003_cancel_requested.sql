-- The flag set when someone asks for a build to be canceled is a request, not the outcome: the
-- scheduler carries it out, and the build counts as canceled once its parts are.
-- Keep in step with ../sqlite/0003_cancel_requested.sql.

ALTER TABLE builds RENAME COLUMN canceled TO cancel_requested;
