-- cofre api, cardholder API part B: blocks, occurrences, dependents, phones, the SMS
-- outbox and the issuer's reference tables (editable data, not code).

-- Block types the issuer applies (GET /api/v1/portadores/bloqueios/tipos). `code` is
-- what a card's block_code holds while blocked.
CREATE TABLE portador_block_types (
    id BIGINT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);
INSERT INTO portador_block_types (id, code, description) VALUES
    (1, 'PERDA', 'Perda do cartao'),
    (2, 'ROUBO', 'Roubo do cartao'),
    (3, 'FRAUDE', 'Fraude confirmada'),
    (4, 'SUSPEITA_FRAUDE', 'Suspeita de fraude'),
    (5, 'A_PEDIDO_CLIENTE', 'A pedido do cliente'),
    (6, 'INADIMPLENCIA', 'Inadimplencia'),
    (7, 'OBITO', 'Obito do portador'),
    (8, 'BLOQUEIO_JUDICIAL', 'Bloqueio judicial');

-- What happened to a portador outside the record history: refusals (PIN or CVV on a
-- blocked card, wrong PIN), blocks, classification changes, SMS deliveries.
CREATE TABLE portador_occurrences (
    id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    actor TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX portador_occurrences_by_customer ON portador_occurrences (customer_id, at_ms);

-- Delinquency history. cofre keeps no billing, so nothing writes here yet; the table
-- exists so that a billing feed can fill it and the endpoint reads real rows.
CREATE TABLE portador_delinquencies (
    id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    started_ms BIGINT NOT NULL,
    ended_ms BIGINT,
    days_late BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX portador_delinquencies_by_customer ON portador_delinquencies (customer_id);

-- Dependents (additional cardholders): a customer record of their own, and a card on
-- the holder's account.
CREATE TABLE portador_dependents (
    dependent_id BIGINT PRIMARY KEY,
    holder_id BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    card_id BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX portador_dependents_by_holder ON portador_dependents (holder_id);

-- Phones. A phone receives SMS only once confirmed with a one-time code; only the
-- code's hash and expiry are kept.
CREATE TABLE portador_phones (
    id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    area TEXT NOT NULL,
    number TEXT NOT NULL,
    extension TEXT NOT NULL,
    wants_sms BIGINT NOT NULL,
    digital_invoice BIGINT NOT NULL,
    sms_confirmed BIGINT NOT NULL,
    code_hash TEXT NOT NULL,
    code_expires_ms BIGINT NOT NULL,
    code_failures BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX portador_phones_by_customer ON portador_phones (customer_id);

-- The default SMS gateway: messages wait here for the carrier connector.
CREATE TABLE sms_outbox (
    id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    phone TEXT NOT NULL,
    payload_hex TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Reference data (GET /api/v1/portadores/escolaridade and /ocupacoes).
CREATE TABLE portador_education (
    id BIGINT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);
INSERT INTO portador_education (id, code, description) VALUES
    (1, 'FUNDAMENTAL_INCOMPLETO', 'Ensino fundamental incompleto'),
    (2, 'FUNDAMENTAL_COMPLETO', 'Ensino fundamental completo'),
    (3, 'MEDIO_INCOMPLETO', 'Ensino medio incompleto'),
    (4, 'MEDIO_COMPLETO', 'Ensino medio completo'),
    (5, 'SUPERIOR_INCOMPLETO', 'Ensino superior incompleto'),
    (6, 'SUPERIOR_COMPLETO', 'Ensino superior completo'),
    (7, 'POS_GRADUACAO', 'Pos-graduacao'),
    (8, 'MESTRADO', 'Mestrado'),
    (9, 'DOUTORADO', 'Doutorado'),
    (10, 'NAO_INFORMADO', 'Nao informado');

CREATE TABLE portador_occupations (
    id BIGINT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);
INSERT INTO portador_occupations (id, code, description) VALUES
    (1, 'ASSALARIADO', 'Assalariado'),
    (2, 'AUTONOMO', 'Autonomo'),
    (3, 'EMPRESARIO', 'Empresario'),
    (4, 'PROFISSIONAL_LIBERAL', 'Profissional liberal'),
    (5, 'SERVIDOR_PUBLICO', 'Servidor publico'),
    (6, 'APOSENTADO', 'Aposentado'),
    (7, 'PENSIONISTA', 'Pensionista'),
    (8, 'ESTUDANTE', 'Estudante'),
    (9, 'DO_LAR', 'Do lar'),
    (10, 'OUTROS', 'Outros');
