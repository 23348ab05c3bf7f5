"""Changes to what a person may do, each committed with its notice and audit events."""
