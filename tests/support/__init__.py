"""Support code shared by the test tiers (not tests themselves)."""
