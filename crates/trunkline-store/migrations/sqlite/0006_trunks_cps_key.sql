-- Call pacing reads, at each admission, the smallest cps_limit among a tenant's trunks that
-- share a cps_key: this index makes that a range scan over the key's trunks only.
CREATE INDEX trunks_cps_key ON trunks (tenant_id, cps_key) WHERE cps_key IS NOT NULL;
