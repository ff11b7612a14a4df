DROP TRIGGER mappings_notify ON mappings;
DROP FUNCTION mappings_notify();
