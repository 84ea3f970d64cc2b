-- cofre api: mass card issue (processor `POST /cards/mass-card-issue-L8V3`).
--
-- A mass issue is a request to emboss N cards without a cardholder for one product. Its
-- cards are kept in `batch_cards`, not in `cards`: they have no customer or account
-- until they are sold. Like `cards`, a batch card holds only the PAN token, lookup token,
-- masked PAN, PVV and the LMK-encrypted PIN: never a clear PAN, PIN or CVV. The values
-- encrypted for the card bureau live only in the embosser file.

-- state: 'queued' (not started: may still be updated or cancelled), 'running', 'done',
-- 'failed', 'cancelled'.
CREATE TABLE mass_issues (
    id BIGINT PRIMARY KEY,
    tenant TEXT NOT NULL,
    organization BIGINT NOT NULL,
    logo BIGINT NOT NULL,
    card_type BIGINT NOT NULL,
    requested BIGINT NOT NULL,
    issued BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    state TEXT NOT NULL,
    error TEXT NOT NULL,
    file_name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX mass_issues_key ON mass_issues (tenant, organization, logo, card_type);

CREATE TABLE batch_cards (
    id BIGINT PRIMARY KEY,
    mass_issue_id BIGINT NOT NULL REFERENCES mass_issues (id),
    sequence BIGINT NOT NULL,
    token TEXT NOT NULL,
    token_version BIGINT NOT NULL,
    lookup_token TEXT NOT NULL,
    masked_pan TEXT NOT NULL,
    expiry TEXT NOT NULL,
    service_code TEXT NOT NULL,
    pvv TEXT NOT NULL,
    pin_blob TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX batch_cards_lookup_token ON batch_cards (lookup_token);
CREATE UNIQUE INDEX batch_cards_token ON batch_cards (token);
CREATE UNIQUE INDEX batch_cards_sequence ON batch_cards (mass_issue_id, sequence);
