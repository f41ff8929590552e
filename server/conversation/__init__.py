"""Conversations: reference linking, multi-turn state, clarifying questions, guided
flows."""
