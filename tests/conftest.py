"""Shared pytest fixtures (kept minimal and generic)."""
from __future__ import annotations

import pytest

from toolqual_utils.testing import OpenAIDouble


@pytest.fixture
def openai_double(monkeypatch):
    """A started OpenAI-compatible TEST DOUBLE on 127.0.0.1 (see toolqual_utils.testing.openai_double).

    Sets OPENAI_API_KEY to a dummy value and unsets OPENAI_BASE_URL / TOOLQUAL_BASE_URL, so a client
    configured with ``base_url=double.base_url`` talks to the double only.
    """
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-a-secret")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("TOOLQUAL_BASE_URL", raising=False)
    with OpenAIDouble() as double:
        yield double
