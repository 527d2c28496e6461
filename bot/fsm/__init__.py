"""Dialogue states, their typed data and the SQL-backed FSM storage."""
