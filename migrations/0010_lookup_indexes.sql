-- cofre api: the tenant-scoped lookups of the hot paths use one index each. Without
-- these SQLite plans `tenant = ? AND token IN (...)` on the (tenant, account_id) index
-- and scans every card of the tenant.
CREATE INDEX cards_tenant_token ON cards (tenant, token);
CREATE INDEX cards_tenant_lookup ON cards (tenant, lookup_token);
