"""Conversations: multi-turn state, reference linking, guided flows."""
