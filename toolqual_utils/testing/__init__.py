"""Test helpers for toolqual: a local OpenAI-compatible test double.

Nothing here talks to a real model. :class:`OpenAIDouble` answers with whatever its script says, so
its output must never be shown as a model's judgement.
"""
from toolqual_utils.testing.openai_double import FAULTS, OpenAIDouble, Reply, fault_reply

__all__ = ["FAULTS", "OpenAIDouble", "Reply", "fault_reply"]
