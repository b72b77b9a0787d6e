"""The report record, its renderings, policy evaluation, and masking of secrets."""
