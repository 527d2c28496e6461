"""Filters shared by routers."""
