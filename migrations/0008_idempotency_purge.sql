-- The idempotency purge deletes by age: an index keeps it from scanning the table.
CREATE INDEX idempotency_created ON idempotency (created_ms);
