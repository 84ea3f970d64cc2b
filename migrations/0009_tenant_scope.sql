-- cofre api: every record belongs to one tenant, and every unique value is unique per
-- tenant: two stores may each have customer number 42 and a customer with the same CPF,
-- and neither learns of the other. Card numbers (PAN, token, lookup token) stay unique
-- across tenants: a PAN is one card in the world.
--
-- Records of the empty tenant (written before this migration by paths that did not set
-- one) keep that tenant: no API client has it, so they are visible to none.
--
-- Idempotency answers are kept sealed under the facade key from now on (no pending
-- claims in the table: a claim, its effect and its answer commit in one transaction);
-- answers recorded before this migration are dropped with their table.

CREATE TABLE customers_t (
    tenant TEXT NOT NULL,
    id BIGINT NOT NULL,
    document TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
INSERT INTO customers_t (tenant, id, document, name, body, status, created_ms, updated_ms)
    SELECT tenant, id, document, name, body, status, created_ms, updated_ms FROM customers;

CREATE TABLE accounts_t (
    tenant TEXT NOT NULL,
    id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    product TEXT NOT NULL,
    credit_limit BIGINT NOT NULL,
    cycle_day BIGINT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, customer_id) REFERENCES customers_t (tenant, id)
);
INSERT INTO accounts_t (tenant, id, customer_id, product, credit_limit, cycle_day, body, status, created_ms, updated_ms)
    SELECT a.tenant, a.id, a.customer_id, a.product, a.credit_limit, a.cycle_day, a.body, a.status, a.created_ms, a.updated_ms
    FROM accounts a;

CREATE TABLE cards_t (
    id BIGINT PRIMARY KEY,
    tenant TEXT NOT NULL,
    account_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
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
    pin_status TEXT NOT NULL,
    block_code TEXT NOT NULL,
    credit_limit BIGINT NOT NULL,
    replaced_by BIGINT,
    dcvv2 TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    FOREIGN KEY (tenant, account_id) REFERENCES accounts_t (tenant, id),
    FOREIGN KEY (tenant, customer_id) REFERENCES customers_t (tenant, id)
);
INSERT INTO cards_t (id, tenant, account_id, customer_id, token, token_version, lookup_token, masked_pan, kind, expiry, service_code, pvv, pin_blob, status, body, pin_status, block_code, credit_limit, replaced_by, dcvv2, created_ms, updated_ms)
    SELECT id, tenant, account_id, customer_id, token, token_version, lookup_token, masked_pan, kind, expiry, service_code, pvv, pin_blob, status, body, pin_status, block_code, credit_limit, replaced_by, dcvv2, created_ms, updated_ms
    FROM cards;

DROP TABLE cards;
DROP TABLE accounts;
DROP TABLE customers;
ALTER TABLE customers_t RENAME TO customers;
ALTER TABLE accounts_t RENAME TO accounts;
ALTER TABLE cards_t RENAME TO cards;
CREATE UNIQUE INDEX customers_document ON customers (tenant, document);
CREATE INDEX accounts_customer ON accounts (tenant, customer_id);
CREATE UNIQUE INDEX cards_lookup_token ON cards (lookup_token);
CREATE UNIQUE INDEX cards_token ON cards (token);
CREATE INDEX cards_account ON cards (tenant, account_id);
CREATE INDEX cards_replaced_by ON cards (replaced_by);

ALTER TABLE history ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
DROP INDEX history_entity;
CREATE INDEX history_entity ON history (tenant, entity, entity_id);

CREATE TABLE portador_index_t (
    tenant TEXT NOT NULL,
    customer_id BIGINT NOT NULL,
    tipo TEXT NOT NULL,
    documento TEXT NOT NULL,
    rg TEXT NOT NULL,
    nome_busca TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, customer_id)
);
INSERT INTO portador_index_t (tenant, customer_id, tipo, documento, rg, nome_busca, created_ms)
    SELECT tenant, customer_id, tipo, documento, rg, nome_busca, created_ms FROM portador_index;
DROP TABLE portador_index;
ALTER TABLE portador_index_t RENAME TO portador_index;
CREATE INDEX portador_index_documento ON portador_index (tenant, documento);
CREATE INDEX portador_index_rg ON portador_index (tenant, rg);
CREATE INDEX portador_index_nome ON portador_index (tenant, nome_busca);

-- A person may be an additional on several accounts (a child on both parents').
CREATE TABLE portador_dependents_t (
    tenant TEXT NOT NULL,
    dependent_id BIGINT NOT NULL,
    holder_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    card_id BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, dependent_id, account_id)
);
INSERT INTO portador_dependents_t (tenant, dependent_id, holder_id, account_id, card_id, created_ms)
    SELECT COALESCE((SELECT c.tenant FROM customers c WHERE c.id = d.holder_id LIMIT 1), ''),
           d.dependent_id, d.holder_id, d.account_id, d.card_id, d.created_ms
    FROM portador_dependents d;
DROP TABLE portador_dependents;
ALTER TABLE portador_dependents_t RENAME TO portador_dependents;
CREATE INDEX portador_dependents_by_holder ON portador_dependents (tenant, holder_id);

ALTER TABLE portador_limit_history ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE portador_occurrences ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE portador_delinquencies ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE portador_phones ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE sms_outbox ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
UPDATE portador_limit_history SET tenant = COALESCE((SELECT c.tenant FROM customers c WHERE c.id = portador_limit_history.customer_id LIMIT 1), '');
UPDATE portador_occurrences SET tenant = COALESCE((SELECT c.tenant FROM customers c WHERE c.id = portador_occurrences.customer_id LIMIT 1), '');
UPDATE portador_delinquencies SET tenant = COALESCE((SELECT c.tenant FROM customers c WHERE c.id = portador_delinquencies.customer_id LIMIT 1), '');
UPDATE portador_phones SET tenant = COALESCE((SELECT c.tenant FROM customers c WHERE c.id = portador_phones.customer_id LIMIT 1), '');
UPDATE sms_outbox SET tenant = COALESCE((SELECT c.tenant FROM customers c WHERE c.id = sms_outbox.customer_id LIMIT 1), '');
DROP INDEX portador_limit_history_customer;
CREATE INDEX portador_limit_history_customer ON portador_limit_history (tenant, customer_id, at_ms);
DROP INDEX portador_occurrences_by_customer;
CREATE INDEX portador_occurrences_by_customer ON portador_occurrences (tenant, customer_id, at_ms);
DROP INDEX portador_delinquencies_by_customer;
CREATE INDEX portador_delinquencies_by_customer ON portador_delinquencies (tenant, customer_id);
DROP INDEX portador_phones_by_customer;
CREATE INDEX portador_phones_by_customer ON portador_phones (tenant, customer_id);

DROP TABLE idempotency;
CREATE TABLE idempotency (
    client_id TEXT NOT NULL,
    request_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status BIGINT NOT NULL,
    sealed_answer TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (client_id, request_key)
);
CREATE INDEX idempotency_created ON idempotency (created_ms);
