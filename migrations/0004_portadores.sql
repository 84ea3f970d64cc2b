-- The cardholder API's index of portadores (a portador is a customer record; these
-- columns only make the lookups by document, RG and name fast and tenant-scoped) and
-- the credit-limit history. No secret here.
CREATE TABLE portador_index (
    customer_id BIGINT PRIMARY KEY,
    tenant TEXT NOT NULL,
    tipo TEXT NOT NULL,
    documento TEXT NOT NULL,
    rg TEXT NOT NULL,
    nome_busca TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX portador_index_documento ON portador_index (tenant, documento);
CREATE INDEX portador_index_rg ON portador_index (tenant, rg);
CREATE INDEX portador_index_nome ON portador_index (tenant, nome_busca);

-- Append-only.
CREATE TABLE portador_limit_history (
    id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    before_cents BIGINT NOT NULL,
    after_cents BIGINT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX portador_limit_history_customer ON portador_limit_history (customer_id, at_ms);
