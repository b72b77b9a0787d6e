"""Membership inference, DP auditing (epsilon lower bounds), synthetic-data attacks."""
