"""Accounts and authentication, shared by every frontend."""
