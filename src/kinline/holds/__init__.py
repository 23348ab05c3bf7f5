"""The call path: telephony call set-up with atomic holds on the allowance."""
