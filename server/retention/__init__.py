"""Proactive retention nudges: what to send whom, when, through which channel, and when not."""
