"""Appeals against notices and decisions: filings, levels and deadlines."""
