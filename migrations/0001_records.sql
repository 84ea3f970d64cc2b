-- cofre api records. One migration set for SQLite and PostgreSQL: only BIGINT and TEXT
-- columns, ids chosen by the application, times as epoch milliseconds. Never a clear PAN,
-- PIN, CVV or key: cards are kept by PAN token, masked PAN, lookup token and the PIN
-- verification value the daemon returned.

CREATE TABLE customers (
    id BIGINT PRIMARY KEY,
    document TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX customers_document ON customers (document);

CREATE TABLE accounts (
    id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    product TEXT NOT NULL,
    credit_limit BIGINT NOT NULL,
    cycle_day BIGINT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX accounts_customer ON accounts (customer_id);

CREATE TABLE cards (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    token TEXT NOT NULL,
    token_version BIGINT NOT NULL,
    lookup_token TEXT NOT NULL,
    masked_pan TEXT NOT NULL,
    kind TEXT NOT NULL,
    expiry TEXT NOT NULL,
    service_code TEXT NOT NULL,
    pvv TEXT NOT NULL,
    pin_blob TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX cards_lookup_token ON cards (lookup_token);
CREATE UNIQUE INDEX cards_token ON cards (token);
CREATE INDEX cards_account ON cards (account_id);

-- Append-only: rows are inserted, never updated or deleted.
CREATE TABLE history (
    id BIGINT PRIMARY KEY,
    entity TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    before_json TEXT,
    after_json TEXT
);
CREATE INDEX history_entity ON history (entity, entity_id);
