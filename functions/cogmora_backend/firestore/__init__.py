"""The Firestore adapter of the storage port (`cogmora_backend.store`).

Only this package imports Google's client: `database` runs the port's
operations, `queries` turns the declarative query specs into Google queries.
"""

from cogmora_backend.firestore.database import FirestoreDatabase

__all__ = ["FirestoreDatabase"]
