DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
DROP TABLE mappings;
DROP TABLE doctors;
DROP TABLE patients;
DROP EXTENSION IF EXISTS pg_trgm;
