"""Visits: visitors, sessions, bookings and the weekly allocation of places."""
