"""Firestore side of the backend: storage, settlement services, queries.

The trading rules live in `cogmora_core`; this package reads documents,
hands them to the core and writes the decisions back in transactions.
"""
