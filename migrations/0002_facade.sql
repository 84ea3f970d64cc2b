-- cofre api: what the REST facade needs beyond the records of 0001.

-- Every PAN ever issued, by lookup token (an HMAC of the PAN under the daemon's lookup
-- key, never the PAN): the primary key is what makes "never repeated" hold across
-- cards, reissues and mass-issue batches.
CREATE TABLE issued_pans (
    lookup_token TEXT PRIMARY KEY,
    created_ms BIGINT NOT NULL
);

-- Idempotency: the first answer to each (client, request id or Idempotency-Key).
-- state: 'pending' while the first call runs, then 'done'.
CREATE TABLE idempotency (
    client_id TEXT NOT NULL,
    request_key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (client_id, request_key)
);

-- Card controls kept beside the card record (non-secret).
ALTER TABLE cards ADD COLUMN pin_status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE cards ADD COLUMN block_code TEXT NOT NULL DEFAULT '';
ALTER TABLE cards ADD COLUMN credit_limit BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cards ADD COLUMN replaced_by BIGINT;
ALTER TABLE cards ADD COLUMN dcvv2 TEXT NOT NULL DEFAULT 'off';
ALTER TABLE cards ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
