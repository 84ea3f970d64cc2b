-- cofre api: mass issue batches survive the facade instance that ran them
-- (docs/scale-out.md, "Mass issue leases").
--
-- A running batch names its owner (a random id each facade process draws at start) and
-- the time its lease ends; the owner renews the lease while it works. Another instance
-- (or the same one restarted) takes over a `running` batch whose lease ended, and
-- finishes it from the cards already committed.
ALTER TABLE mass_issues ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE mass_issues ADD COLUMN lease_until_ms BIGINT NOT NULL DEFAULT 0;

-- The values for the card bureau of the cards committed so far (the PAN and the codes
-- encrypted under the bureau's transport key by the daemon; never clear), so that the
-- instance that finishes a batch can write the whole embosser file. Cleared when the
-- batch ends: afterwards they live only in the file, as before.
ALTER TABLE batch_cards ADD COLUMN encrypted_pan TEXT NOT NULL DEFAULT '';
ALTER TABLE batch_cards ADD COLUMN encrypted_codes TEXT NOT NULL DEFAULT '';
