"""Getting notices to people: the kiosk inbox, email and printed batches (an outbox)."""
