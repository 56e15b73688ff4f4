"""The venues: one folder per exchange behind one adapter shape (`base.VenueAdapter`).

Each folder turns its exchange's wire format into `Tick`s and `Funding`s;
nothing of it leaks out. `registry.ADAPTERS` lists them.
"""
