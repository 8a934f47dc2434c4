"""The routing service (分办): the directory, and the life of every case.

An ``OpinionSubmitted`` becomes a case: classified with the district's taxonomy,
prioritised, given deadlines on the official working calendar, linked to its likely
duplicates and assigned to a station and a representative by a transparent score. Staff
then work it through the state machine in :mod:`services.routing.domain` until it is
closed. See docs/routing.md.
"""
