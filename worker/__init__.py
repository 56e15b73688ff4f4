"""The Cloud Run worker: market feeds, an in-memory index of resting levels, marks."""
