"""Intake: every channel residents use (QR form, walk-ins, spokespersons, visits, the 12345
hotline, online, Open311) into ``OpinionSubmitted``, with tracking and feedback."""
