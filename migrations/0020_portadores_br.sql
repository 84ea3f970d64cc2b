-- cofre api, the cardholder API as a Brazilian issuer expects it: reference data with
-- its accents, kinship degrees, personal references, an SMS outbox with delivery
-- states, and delinquencies fed by the billing system.

UPDATE portador_block_types SET description = 'Perda do cartão' WHERE code = 'PERDA';
UPDATE portador_block_types SET description = 'Roubo do cartão' WHERE code = 'ROUBO';
UPDATE portador_block_types SET description = 'Inadimplência' WHERE code = 'INADIMPLENCIA';
UPDATE portador_block_types SET description = 'Óbito do portador' WHERE code = 'OBITO';
UPDATE portador_education SET description = 'Ensino médio incompleto' WHERE code = 'MEDIO_INCOMPLETO';
UPDATE portador_education SET description = 'Ensino médio completo' WHERE code = 'MEDIO_COMPLETO';
UPDATE portador_education SET description = 'Pós-graduação' WHERE code = 'POS_GRADUACAO';
UPDATE portador_education SET description = 'Não informado' WHERE code = 'NAO_INFORMADO';
UPDATE portador_occupations SET description = 'Autônomo' WHERE code = 'AUTONOMO';
UPDATE portador_occupations SET description = 'Empresário' WHERE code = 'EMPRESARIO';
UPDATE portador_occupations SET description = 'Servidor público' WHERE code = 'SERVIDOR_PUBLICO';

-- Kinship degrees (grauParentesco of additionals and references): requests give the
-- code or the id, answers the id.
CREATE TABLE portador_kinship (
    id BIGINT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);
INSERT INTO portador_kinship (id, code, description) VALUES
    (1, 'CONJUGE', 'Cônjuge'),
    (2, 'COMPANHEIRO', 'Companheiro(a)'),
    (3, 'FILHO', 'Filho(a)'),
    (4, 'PAI', 'Pai'),
    (5, 'MAE', 'Mãe'),
    (6, 'IRMAO', 'Irmão(ã)'),
    (7, 'AVO', 'Avô/Avó'),
    (8, 'NETO', 'Neto(a)'),
    (9, 'TIO', 'Tio(a)'),
    (10, 'SOBRINHO', 'Sobrinho(a)'),
    (11, 'PRIMO', 'Primo(a)'),
    (12, 'ENTEADO', 'Enteado(a)'),
    (13, 'OUTROS', 'Outros');

-- Personal references given at account opening (never a login or a secret).
CREATE TABLE portador_references (
    id BIGINT PRIMARY KEY,
    tenant TEXT NOT NULL,
    customer_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    kinship BIGINT NOT NULL,
    phone_kind TEXT NOT NULL,
    area TEXT NOT NULL,
    number TEXT NOT NULL,
    extension TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX portador_references_by_customer ON portador_references (tenant, customer_id);

-- The SMS outbox gets delivery states: `queued` until the delivery worker hands the
-- message to the gateway (`sent`), or gives up after its retries (`failed`). The
-- payload (a PIN block under the SMS delivery key, or a confirmation text sealed under
-- the facade key) is erased once the message leaves the queue. `purpose` (`pin`,
-- `code`), `card_id` and `phone` feed the per-card and per-phone rate limits.
ALTER TABLE sms_outbox ADD COLUMN status TEXT NOT NULL DEFAULT 'queued';
ALTER TABLE sms_outbox ADD COLUMN purpose TEXT NOT NULL DEFAULT 'pin';
ALTER TABLE sms_outbox ADD COLUMN card_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sms_outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sms_outbox ADD COLUMN next_attempt_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sms_outbox ADD COLUMN done_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sms_outbox ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
-- Messages queued before delivery states existed were never delivered by cofre, and
-- their payloads were under a shared transport key: they are voided, not sent.
UPDATE sms_outbox SET status = 'failed', payload_hex = '', last_error = 'queued before delivery states';
CREATE INDEX sms_outbox_queue ON sms_outbox (status, next_attempt_ms);
CREATE INDEX sms_outbox_by_phone ON sms_outbox (tenant, phone, created_ms);
CREATE INDEX sms_outbox_by_card ON sms_outbox (tenant, card_id, created_ms);

-- Confirmation codes were kept as an unkeyed SHA-256 (a million guesses away from
-- the code): pending ones are voided; new ones are an HMAC under a key derived from
-- the facade key.
UPDATE portador_phones SET code_hash = '', code_expires_ms = 0, code_failures = 0;
